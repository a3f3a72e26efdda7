"""``scripts/prepare_data.py audio-varied``: which tracks train, validate, or stay unseen."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

soundfile = pytest.importorskip("soundfile")


@pytest.fixture(scope="module")
def prepare_data(import_script):
    return import_script("prepare_data")


def _track(path: Path, seconds: float, channels: int = 2, rate: int = 8000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.stack([np.sin(2 * np.pi * (110 + 50 * c) * t) for c in range(channels)], 1)
    path.parent.mkdir(parents=True, exist_ok=True)
    soundfile.write(str(path), x, rate, format="OGG", subtype="VORBIS")
    return x


def test_varied_music_splits_by_track_and_by_source(prepare_data, tmp_path):
    game, unseen, out = tmp_path / "game", tmp_path / "unseen", tmp_path / "out"
    _track(game / "album" / "long one.ogg", 200)    # trains, cut to its centre 150 s
    _track(game / "theme.ogg", 45)                   # validation: a 20 s excerpt
    _track(game / "jingle.ogg", 10)                  # shorter than 30 s: left out
    _track(game / "mono.ogg", 60, channels=1)        # not stereo: left out
    _track(unseen / "a.ogg", 40)                     # a source that never trains
    sources = {"game": (game, "game-data", ["theme"]), "other": (unseen, "other-data", None)}
    manifest = prepare_data.add_varied_music(out, {}, sources)

    names = {k: sorted(i["file"] for i in v) for k, v in manifest.items()}
    assert names == {
        "stereo/train": ["game_long_one.flac"], "mono/train": ["game_long_one.flac"],
        "stereo/val": ["game_theme.flac"], "mono/val": ["game_theme.flac"],
        "stereo/val-sources": ["other_a.flac"], "mono/val-sources": ["other_a.flac"],
    }
    seconds = {k: v[0]["seconds"] for k, v in manifest.items()}
    assert seconds["stereo/train"] == 150.0 and seconds["stereo/val"] == 20.0
    assert seconds["mono/val-sources"] == 20.0
    stereo, rate = soundfile.read(str(out / "stereo/train/game_long_one.flac"), dtype="float32")
    mono, _ = soundfile.read(str(out / "mono/train/game_long_one.flac"), dtype="float32")
    assert rate == 8000 and stereo.shape == (150 * 8000, 2) and mono.shape == (150 * 8000,)
    np.testing.assert_allclose(mono, stereo.mean(1), atol=2 / 32767)
    json.dumps(manifest)  # what prepare_audio_varied writes as manifest.json


def test_varied_music_names_the_missing_package(prepare_data, tmp_path):
    with pytest.raises(SystemExit, match="apt-get install game-data"):
        prepare_data.add_varied_music(tmp_path, {}, {"game": (tmp_path / "no", "game-data", [])})


def test_the_held_out_source_never_trains(prepare_data):
    """Colobot is the held-out set every audio figure is reported on: none of the varied
    sources may read from it, and the unseen-source validation games never train."""
    for sources in (prepare_data.VARIED, prepare_data.WIDE):
        folders = [str(folder) for folder, _, _ in sources.values()]
        assert not any(f.startswith(str(prepare_data.COLOBOT.parent)) for f in folders)
        assert [s for s, (_, _, val) in sources.items() if val is None]


def test_the_wide_set_keeps_the_varied_split(prepare_data):
    """``audio-wide`` only adds sources: every VARIED game keeps its role (a model chosen on
    the 0.7 validation sets is compared on the same items), and the games that never train
    in the varied set never train in the wide one."""
    wide = prepare_data.WIDE
    assert {k: wide[k] for k in prepare_data.VARIED} == prepare_data.VARIED
    unseen = {k for k, (_, _, val) in wide.items() if val is None}
    assert {"lincity", "frozen-bubble"} < unseen and len(unseen) == 4


def test_images_half_links_every_other_source_with_all_its_scales(prepare_data, tmp_path):
    """``images-half``: the training images of every other source (sorted by path), each
    with all its scales, linked not copied; val linked whole; a rerun after the full set
    moved relinks instead of failing on the dangling links."""
    full, out = tmp_path / "full", tmp_path / "half"
    (full / "train").mkdir(parents=True)
    (full / "val").mkdir()
    items = [{"file": f"{s}_x{k}.png", "source": f"/src/{s}.jpg", "downscale": k}
             for s in ("d", "a", "c", "b") for k in (1, 2)]
    for item in items:
        (full / "train" / item["file"]).write_bytes(item["file"].encode())
    (full / "val" / "v.png").write_bytes(b"v")
    (full / "manifest.json").write_text(json.dumps({"train": items, "val": [{"file": "v.png"}]}))
    manifest = prepare_data.prepare_images_half(out, full)
    kept = sorted(p.name for p in (out / "train").iterdir())
    assert kept == ["a_x1.png", "a_x2.png", "c_x1.png", "c_x2.png"]  # sources a and c
    assert all((out / "train" / k).is_symlink() for k in kept)
    assert (out / "train" / "c_x2.png").read_bytes() == b"c_x2.png"
    assert (out / "val" / "v.png").read_bytes() == b"v"
    assert sorted(i["file"] for i in manifest["train"]) == kept
    moved = full.rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError):  # the old links dangle
        (out / "train" / "a_x1.png").read_bytes()
    prepare_data.prepare_images_half(out, moved)  # a rerun relinks them
    assert sorted(p.name for p in (out / "train").iterdir()) == kept
    assert (out / "train" / "a_x1.png").read_bytes() == b"a_x1.png"
    assert (out / "val" / "v.png").read_bytes() == b"v"
