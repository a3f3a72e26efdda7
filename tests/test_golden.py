"""Golden streams made once with the shipped rgb-16x preset and decoded forever after.

They pin the container and entropy formats: if a change makes these fail, a format moved.
``golden/format1`` was written by walloc-io 0.1 (constriction ANS) and is never rewritten;
``golden/format2`` is the current format (native rANS). Regenerate the current one (only on
purpose, e.g. after retraining the preset) with

    WALLOC_REGENERATE_GOLDEN=1 python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import itertools
import json
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest

import walloc_io
from walloc_io.media import read_signal

from .common import golden_codec

GOLDEN_ROOT = Path(__file__).parent / "golden"
FORMATS = {1: GOLDEN_ROOT / "format1", 2: GOLDEN_ROOT / "format2"}
GOLDEN = FORMATS[2]  # what REGENERATE rewrites


def inputs() -> dict[str, np.ndarray]:
    image = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
    crop = np.ascontiguousarray(image[:, 100:164, 200:296])
    odd = np.ascontiguousarray(image[:, 10:47, 20:73]).astype(np.float32) / 255 * 4 - 2
    u16 = (np.ascontiguousarray(image[:, 200:240, 0:56]).astype(np.uint16) * 257)
    return {"uint8_64x96": crop, "float32_37x53": odd, "uint16_40x56": u16}


def regenerate(codec) -> None:
    GOLDEN.mkdir(exist_ok=True)
    for name, x in inputs().items():
        blob = codec.encode(x)
        (GOLDEN / f"{name}.wlc").write_bytes(blob)
        np.savez_compressed(GOLDEN / f"{name}.npz", latents=codec.decode_latents(blob),
                            decoded=codec.decode(blob))
        header = walloc_io.read_header(blob)
        (GOLDEN / f"{name}.json").write_text(json.dumps(
            {"shape": list(header.array_shape), "dtype": header.dtype, "bytes": len(blob),
             "fingerprint": header.fingerprint, "padding": list(header.padding)}, indent=1))


@pytest.fixture(scope="module")
def codec():
    return golden_codec(regenerate)


@pytest.mark.parametrize("version", sorted(FORMATS))
@pytest.mark.parametrize("name", sorted(inputs()))
def test_golden_stream_decodes(codec, name, version):
    folder = FORMATS[version]
    blob = (folder / f"{name}.wlc").read_bytes()
    meta = json.loads((folder / f"{name}.json").read_text())
    expected = np.load(folder / f"{name}.npz")
    header = walloc_io.read_header(blob)
    assert header.version == version
    assert [*header.array_shape] == meta["shape"] and header.dtype == meta["dtype"]
    assert header.fingerprint == meta["fingerprint"] == codec.fingerprint
    np.testing.assert_array_equal(codec.decode_latents(blob), expected["latents"])
    decoded = codec.decode(blob)
    assert decoded.dtype == expected["decoded"].dtype and decoded.shape == tuple(meta["shape"])
    tolerance = {"uint8": 1, "uint16": 257, "float32": 4 / 255}[meta["dtype"]]
    assert np.abs(decoded.astype(np.float64) - expected["decoded"]).max() <= tolerance


def test_current_encoder_writes_the_current_format(codec):
    """Re-encoding the golden inputs gives the format-2 fixtures' latents (up to the rare
    rounding tie the encoder's arithmetic may move) and streams the format-2 decoder reads."""
    for name, x in inputs().items():
        blob = codec.encode(x, quality=50)  # the design point (the default may raise it)
        assert walloc_io.read_header(blob).version == 2
        expected = np.load(GOLDEN / f"{name}.npz")["latents"]
        assert np.mean(codec.decode_latents(blob) != expected) < 1e-3


def test_golden_inputs_still_reconstruct_well(codec):
    """The fixtures are real content: their decoded PSNR is in a sane band."""
    from walloc_io.metrics import psnr

    for (name, x), folder in itertools.product(inputs().items(), FORMATS.values()):
        decoded = np.load(folder / f"{name}.npz")["decoded"]
        peak = 4.0 if x.dtype == np.float32 else None
        assert 24 < psnr(x, decoded, peak) < 45, name


# -- format 3: streams with a quality (written once by walloc-io 0.3; never regenerated) -------
FORMAT3 = GOLDEN_ROOT / "format3"
QUALITY_CASES = {"uint8_64x96_q20": ("uint8_64x96", 20), "uint8_64x96_q90": ("uint8_64x96", 90),
                 "float32_37x53_q80": ("float32_37x53", 80)}


def write_format3(codec) -> None:
    """Called by hand once (``python -c 'from tests.test_golden import *; ...'``)."""
    FORMAT3.mkdir(exist_ok=True)
    for name, (source, q) in QUALITY_CASES.items():
        blob = codec.encode(inputs()[source], quality=q)
        (FORMAT3 / f"{name}.wlc").write_bytes(blob)
        np.savez_compressed(FORMAT3 / f"{name}.npz", latents=codec.decode_latents(blob),
                            decoded=codec.decode(blob))


@pytest.mark.parametrize("name", sorted(QUALITY_CASES))
def test_golden_quality_streams_decode(codec, name):
    blob = (FORMAT3 / f"{name}.wlc").read_bytes()
    expected = np.load(FORMAT3 / f"{name}.npz")
    header = walloc_io.read_header(blob)
    assert header.version == 3 and header.quality == QUALITY_CASES[name][1]
    assert header.ladder == codec.ladder_id
    np.testing.assert_array_equal(codec.decode_latents(blob), expected["latents"])
    decoded = codec.decode(blob)
    tolerance = {"uint8": 1, "float32": 4 / 255}[header.dtype]
    assert np.abs(decoded.astype(np.float64) - expected["decoded"]).max() <= tolerance


# -- format 3 with the boundary split and floor rungs (walloc-io 0.4, rgb-16x version 2;
# written once, never regenerated) --------------------------------------------------------
BOUNDARY = GOLDEN_ROOT / "format3-boundary"
BOUNDARY_FINGERPRINT = "781b910c"


def boundary_inputs() -> dict[str, tuple[np.ndarray, int | None]]:
    image = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
    yy, xx = np.mgrid[0:256, 0:256] / 256.0
    dusk = np.round(np.stack([18 + 9 * yy, 20 + 8 * yy, 26 + 5 * xx])).astype(np.uint8)
    return {"uint8_256x320_q50": (np.ascontiguousarray(image[:, 64:320, 96:416]), 50),
            "uint8_256x256_default": (dusk, None)}


def write_golden(folder, inputs: dict[str, tuple[np.ndarray, int | None]], codec) -> None:
    """Called by hand once per fixture folder, e.g. ``python -c 'from tests.test_golden
    import *; write_golden(BOUNDARY, boundary_inputs(), load_codec("rgb-16x"))'``."""
    for name, (x, q) in inputs.items():
        write_fixture(folder, name, codec, x, q)


def write_fixture(folder, name: str, codec, x: np.ndarray, q: int | None, rate: int = 0) -> None:
    """One fixture: the stream ``codec`` writes for ``x``, its latents and decoded signal."""
    folder.mkdir(exist_ok=True)
    blob = codec.encode(x, sample_rate=rate, quality=q)
    (folder / f"{name}.wlc").write_bytes(blob)
    np.savez_compressed(folder / f"{name}.npz", latents=codec.decode_latents(blob),
                        decoded=codec.decode(blob))


def decodes_as_written(folder, name: str, codec, blob: bytes) -> np.ndarray:
    """The fixture's stream decodes to its latents exactly and to its signal within 1 LSB;
    returns the decoded signal."""
    expected = np.load(folder / f"{name}.npz")
    np.testing.assert_array_equal(codec.decode_latents(blob), expected["latents"])
    decoded = codec.decode(blob)
    assert np.abs(decoded.astype(np.int64) - expected["decoded"]).max() <= 1
    return decoded


@pytest.mark.parametrize("name", sorted(boundary_inputs()))
def test_golden_boundary_streams_decode(name):
    blob = (BOUNDARY / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    codec = walloc_io.load_codec("rgb-16x", device="cpu", fingerprint=header.fingerprint)
    assert header.fingerprint.startswith(BOUNDARY_FINGERPRINT)
    assert header.version == 3 and header.boundary is not None
    x, q = boundary_inputs()[name]
    assert (header.quality in codec.floor_rungs) if q is None else header.quality is None
    decoded = decodes_as_written(BOUNDARY, name, codec, blob)
    assert psnr_of(x, decoded) > (27 if q else 44)


def psnr_of(x, y) -> float:
    from walloc_io.metrics import psnr

    return psnr(x, y)


# -- rate allocation: per-channel steps from the config's step_gains (walloc-io 0.5,
# rgb-16x version 3; written once, never regenerated) --------------------------------------
ALLOCATION = GOLDEN_ROOT / "format3-allocation"
ALLOCATION_FINGERPRINT = "787d0eb5"


def allocation_inputs() -> dict[str, tuple[np.ndarray, int | None]]:
    image = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
    return {"uint8_128x192_q1": (np.ascontiguousarray(image[:, 32:160, 64:256]), 1),
            "uint8_256x256_q80": (np.ascontiguousarray(image[:, :256, 128:384]), 80)}


@pytest.mark.parametrize("name", sorted(allocation_inputs()))
def test_golden_allocation_streams_decode(name):
    blob = (ALLOCATION / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    codec = walloc_io.load_codec("rgb-16x", device="cpu", fingerprint=header.fingerprint)
    assert header.fingerprint.startswith(ALLOCATION_FINGERPRINT) and codec.config.step_gains
    x, q = allocation_inputs()[name]
    assert header.quality == q
    decodes_as_written(ALLOCATION, name, codec, blob)
    # and the encoder still writes these latents (the C analysis applies the same gains)
    np.testing.assert_array_equal(codec.decode_latents(codec.encode(x, quality=q)),
                                  np.load(ALLOCATION / f"{name}.npz")["latents"])


# -- audio streams of the versions walloc-io 0.7 replaced (mono-16x version 2, stereo-20x
# version 1; written once by those models, never regenerated): they decode with the weights
# kept under versions/, found by the fingerprint the stream records ------------------------
AUDIO = GOLDEN_ROOT / "format3-audio"
AUDIO_FINGERPRINTS = {"mono-16x": "dad76899a8123c07b35b92526aa33ab9",
                      "stereo-20x": "e5e16c89f23c8bd38d602f12033836ee"}


def audio_inputs() -> dict[str, tuple[str, np.ndarray, int, int | None]]:
    """name -> (preset, int16 (C, T), sample rate, quality): 1 s of the bundled clip."""
    clip = read_signal(files("walloc_io").joinpath("samples", "heroes_rite.flac"))
    part = np.ascontiguousarray(clip.data[:, clip.sample_rate:2 * clip.sample_rate])
    return {"mono16x_1s_default": ("mono-16x", part[:1], clip.sample_rate, None),
            "stereo20x_1s_q35": ("stereo-20x", part, clip.sample_rate, 35)}


def write_audio_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_audio_golden()'``, while the replaced versions were still kept."""
    for name, (preset, x, rate, q) in audio_inputs().items():
        codec = walloc_io.load_codec(preset, device="cpu", fingerprint=AUDIO_FINGERPRINTS[preset])
        write_fixture(AUDIO, name, codec, x, q, rate)


@pytest.mark.parametrize("name", sorted(audio_inputs()))
def test_golden_audio_streams_of_replaced_versions_decode(name):
    from walloc_io.metrics import snr

    preset, x, rate, q = audio_inputs()[name]
    blob = (AUDIO / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint.startswith(AUDIO_FINGERPRINTS[preset]) and header.sample_rate == rate
    assert walloc_io.load_codec(preset, device="cpu").fingerprint != header.fingerprint
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    decoded = decodes_as_written(AUDIO, name, codec, blob)
    assert decoded.dtype == np.int16 and decoded.shape == x.shape
    assert snr(x, decoded) > 12  # 15.28 dB (mono) and 14.50 dB (stereo) when written


# -- the contextual entropy model (walloc-io 0.8: rgb-16x version 4 and stereo-20x version 3,
# contexts that see each channel's causal neighbours; written once, never regenerated) -----
CONTEXTUAL = GOLDEN_ROOT / "format3-contextual"
CONTEXTUAL_FINGERPRINTS = {"rgb-16x": "74b8f14046cd82cf382d06e12d73f854",
                           "stereo-20x": "53a55c55d2da4a2fe1daaf1efabeb705"}


def contextual_inputs() -> dict[str, tuple[str, np.ndarray, int, int | None]]:
    """name -> (preset, signal, sample rate, quality)."""
    image = read_signal(files("walloc_io").joinpath("samples", "kleiber.png")).data
    clip = read_signal(files("walloc_io").joinpath("samples", "heroes_rite.flac"))
    audio = (clip.sample_rate, np.ascontiguousarray(clip.data))
    return {"rgb16x_uint8_128x192_q50": ("rgb-16x", np.ascontiguousarray(image[:, 32:160, 64:256]),
                                         0, 50),
            "rgb16x_uint8_256x256_q90": ("rgb-16x", np.ascontiguousarray(image[:, :256, 128:384]),
                                         0, 90),
            "stereo20x_1s_q35": ("stereo-20x", audio[1][:, audio[0]:2 * audio[0]], audio[0], 35)}


def write_contextual_golden(names=None) -> None:
    """Called by hand once per fixture: ``python -c 'from tests.test_golden import *;
    write_contextual_golden()'``."""
    for name, (preset, x, rate, q) in contextual_inputs().items():
        if names and name not in names:
            continue
        codec = walloc_io.load_codec(preset, device="cpu",
                                     fingerprint=CONTEXTUAL_FINGERPRINTS[preset])
        write_fixture(CONTEXTUAL, name, codec, x, q, rate)


@pytest.mark.parametrize("name", sorted(contextual_inputs()))
def test_golden_contextual_streams_decode(name):
    preset, x, rate, q = contextual_inputs()[name]
    blob = (CONTEXTUAL / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint.startswith(CONTEXTUAL_FINGERPRINTS[preset])
    assert header.entropy_model == "contextual"
    assert header.quality == (None if q == 50 else q)  # the design point records none
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    assert decodes_as_written(CONTEXTUAL, name, codec, blob).shape == x.shape
    # the encoder still writes these words
    assert codec.encode(x, sample_rate=rate, quality=q) == blob


# -- deeper decoders on the frozen 0.8 encoders (walloc-io 0.9: rgb-16x version 5, rgb-4x
# version 4, gray-16x version 5; written once, never regenerated) -------------------------
DECODER09 = GOLDEN_ROOT / "format3-decoder09"
DECODER09_FINGERPRINTS = {"rgb-16x": "15d2cbe4", "rgb-4x": "1e1688a1", "gray-16x": "2af45883"}


def decoder09_inputs() -> dict[str, tuple[str, np.ndarray, int | None]]:
    """name -> (preset, image, quality): a split-coded 256x320 crop at the default and a
    small tile (coded as it is) at q30."""
    image = read_signal(files("walloc_io").joinpath("samples", "ladybird.png")).data
    grey = np.round(image.astype(np.float64).mean(axis=0, keepdims=True)).astype(np.uint8)
    return {f"{tag}_{h}x{w}_{'default' if q is None else f'q{q}'}": (
                preset, np.ascontiguousarray(x[:, 64:64 + h, 96:96 + w]), q)
            for preset, tag, x in (("rgb-16x", "rgb16x", image), ("rgb-4x", "rgb4x", image),
                                   ("gray-16x", "gray16x", grey))
            for h, w, q in ((256, 320, None), (96, 128, 30))}


def write_decoder09_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_decoder09_golden()'``."""
    for name, (preset, x, q) in decoder09_inputs().items():
        codec = walloc_io.load_codec(preset, device="cpu")
        assert codec.fingerprint.startswith(DECODER09_FINGERPRINTS[preset])
        write_fixture(DECODER09, name, codec, x, q)


@pytest.mark.parametrize("name", sorted(decoder09_inputs()))
def test_golden_decoder09_streams_decode(name):
    preset, x, q = decoder09_inputs()[name]
    blob = (DECODER09 / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint.startswith(DECODER09_FINGERPRINTS[preset])
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    decoded = decodes_as_written(DECODER09, name, codec, blob)
    assert psnr_of(x, decoded) > 27
    assert codec.encode(x, quality=q) == blob  # the encoder still writes these words


# -- audio streams of mono-16x version 4 and stereo-5x version 2 (walloc-io 0.8, still
# shipped in 0.9; written once, never regenerated, so they keep decoding when a later
# version replaces either) -----------------------------------------------------------------
AUDIO08 = GOLDEN_ROOT / "format3-audio08"
AUDIO08_FINGERPRINTS = {"mono-16x": "3ef29b9beec29536f836096430b83ebd",
                        "stereo-5x": "fc8e26883443e35a8907901575555510"}


def audio08_inputs() -> dict[str, tuple[str, np.ndarray, int, int | None]]:
    """name -> (preset, int16 (C, T), sample rate, quality): 1 s of the bundled clip at the
    default quality (the rate floor may lift it) and at q30."""
    clip = read_signal(files("walloc_io").joinpath("samples", "heroes_rite.flac"))
    part = np.ascontiguousarray(clip.data[:, 2 * clip.sample_rate:3 * clip.sample_rate])
    return {f"{tag}_1s_{'default' if q is None else f'q{q}'}": (preset, x, clip.sample_rate, q)
            for preset, tag, x in (("mono-16x", "mono16x", part[:1]),
                                   ("stereo-5x", "stereo5x", part))
            for q in (None, 30)}


def write_audio08_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_audio08_golden()'``."""
    write_clip_fixtures(AUDIO08, AUDIO08_FINGERPRINTS, audio08_inputs())


def write_clip_fixtures(folder, fingerprints: dict[str, str], inputs) -> None:
    """Fixtures of the 0.8 clips, written by each preset's version of ``fingerprints``."""
    for name, (preset, x, rate, q) in inputs.items():
        codec = walloc_io.load_codec(preset, device="cpu", fingerprint=fingerprints[preset])
        write_fixture(folder, name, codec, x, q, rate)


@pytest.mark.parametrize("name", sorted(audio08_inputs()))
def test_golden_audio08_streams_decode(name):
    from walloc_io.metrics import snr

    preset, x, rate, q = audio08_inputs()[name]
    blob = (AUDIO08 / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint.startswith(AUDIO08_FINGERPRINTS[preset])
    assert header.sample_rate == rate and (q is None or header.quality == q)
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    decoded = decodes_as_written(AUDIO08, name, codec, blob)
    assert decoded.dtype == np.int16 and decoded.shape == x.shape
    assert snr(x, decoded) > 8
    assert codec.encode(x, sample_rate=rate, quality=q) == blob  # the encoder still writes them


# -- rgb-16x version 6 (walloc-io 0.10: an 8-block decoder on the same frozen encoder;
# written once, never regenerated) ----------------------------------------------------------
DECODER10 = GOLDEN_ROOT / "format3-decoder10"
DECODER10_FINGERPRINTS = {"rgb-16x": "4200fa7ab8d7a9b53fb09fac8192a7fa"}


def decoder10_inputs() -> dict[str, tuple[str, np.ndarray, int | None]]:
    """name -> (preset, image, quality): the 0.9 fixtures' crops (split-coded 256x320 at the
    default, a 96x128 tile at q30), so the two versions decode the same latents."""
    return {name: spec for name, spec in decoder09_inputs().items()
            if spec[0] in DECODER10_FINGERPRINTS}


def write_decoder10_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_decoder10_golden()'``."""
    write_decoder_golden(DECODER10, DECODER10_FINGERPRINTS, decoder10_inputs())


def write_decoder_golden(folder, fingerprints: dict[str, str], inputs) -> None:
    """A later decoder's fixtures of the 0.9 crops, written in float32 by its fingerprint."""
    for name, (preset, x, q) in inputs.items():
        codec = walloc_io.load_codec(preset, device="cpu", precision="float32",
                                     fingerprint=fingerprints[preset])
        write_fixture(folder, name, codec, x, q)


def decoder_fixture_decodes(folder, fingerprints: dict[str, str], name: str, earlier,
                            earlier_fingerprints: dict[str, str]) -> None:
    """A later decoder's fixture of a 0.9 crop: it decodes as written, the encoder still
    writes it, its latents are the 0.9 stream's (only the decoder changed), and it decodes
    better than the ``earlier`` family's stream of the same crop."""
    preset, x, q = decoder09_inputs()[name]
    blob = (folder / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint == fingerprints[preset]
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    decoded = decodes_as_written(folder, name, codec, blob)
    assert psnr_of(x, decoded) > 27
    assert codec.encode(x, quality=q) == blob  # the encoder still writes these words
    np.testing.assert_array_equal(codec.decode_latents(blob),
                                  np.load(DECODER09 / f"{name}.npz")["latents"])
    old = walloc_io.read_header((earlier / f"{name}.wlc").read_bytes())
    assert old.fingerprint.startswith(earlier_fingerprints[preset])
    assert psnr_of(x, decoded) > psnr_of(x, np.load(earlier / f"{name}.npz")["decoded"])


@pytest.mark.parametrize("name", sorted(decoder10_inputs()))
def test_golden_decoder10_streams_decode(name):
    decoder_fixture_decodes(DECODER10, DECODER10_FINGERPRINTS, name, DECODER09,
                            DECODER09_FINGERPRINTS)


# -- rgb-16x version 7 (walloc-io 0.11: a 9-block decoder on the same frozen encoder;
# written once, never regenerated) ----------------------------------------------------------
DECODER11 = GOLDEN_ROOT / "format3-decoder11"
DECODER11_FINGERPRINTS = {"rgb-16x": "94528e60c89534844be77bdac3d81eb1"}


def decoder11_inputs() -> dict[str, tuple[str, np.ndarray, int | None]]:
    """name -> (preset, image, quality): the 0.9 and 0.10 fixtures' crops, so the three
    versions decode the same latents."""
    return {name: spec for name, spec in decoder09_inputs().items()
            if spec[0] in DECODER11_FINGERPRINTS}


def write_decoder11_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_decoder11_golden()'``."""
    write_decoder_golden(DECODER11, DECODER11_FINGERPRINTS, decoder11_inputs())


@pytest.mark.parametrize("name", sorted(decoder11_inputs()))
def test_golden_decoder11_streams_decode(name):
    decoder_fixture_decodes(DECODER11, DECODER11_FINGERPRINTS, name, DECODER10,
                            DECODER10_FINGERPRINTS)


# -- mono-16x version 5 and stereo-5x version 3 (walloc-io 0.12: the earlier versions'
# encoders, 9-tap linear decoders solved in closed form; written once, never regenerated) --
AUDIO12 = GOLDEN_ROOT / "format3-audio12"
AUDIO12_FINGERPRINTS = {"mono-16x": "3ac8a81a3f4791a0b291ac2a51273f68",
                        "stereo-5x": "cfc4e4e1a8c8c82c825bbb565c9dbf2e"}


def audio12_inputs() -> dict[str, tuple[str, np.ndarray, int, int | None]]:
    """The 0.8 fixtures' clips, so each preset's two versions decode the same latents."""
    return {name: spec for name, spec in audio08_inputs().items()
            if spec[0] in AUDIO12_FINGERPRINTS}


def write_audio12_golden() -> None:
    """Called by hand once: ``python -c 'from tests.test_golden import *;
    write_audio12_golden()'``."""
    write_clip_fixtures(AUDIO12, AUDIO12_FINGERPRINTS, audio12_inputs())


@pytest.mark.parametrize("name", sorted(audio12_inputs()))
def test_golden_audio12_streams_decode(name):
    """Decodes as written, the encoder still writes it, its latents are the 0.8 version's
    (only the decoder changed), and it decodes better than that version's stream of the
    same clip."""
    from walloc_io.metrics import snr

    preset, x, rate, q = audio12_inputs()[name]
    blob = (AUDIO12 / f"{name}.wlc").read_bytes()
    header = walloc_io.read_header(blob)
    assert header.fingerprint == AUDIO12_FINGERPRINTS[preset]
    codec = walloc_io.load_codec(preset, device="cpu", fingerprint=header.fingerprint)
    assert codec.config.decoder_blocks == 0 and codec.config.linear_kernel == 9
    decoded = decodes_as_written(AUDIO12, name, codec, blob)
    assert codec.encode(x, sample_rate=rate, quality=q) == blob
    np.testing.assert_array_equal(codec.decode_latents(blob),
                                  np.load(AUDIO08 / f"{name}.npz")["latents"])
    old = np.load(AUDIO08 / f"{name}.npz")["decoded"]
    assert snr(x, decoded) > snr(x, old)
