"""WebDataset faces: a decoder for ``.wlc`` members and an encoder hook for tar writers.

Reading, next to webdataset's own decoders::

    import webdataset as wds, walloc_io
    ds = (wds.WebDataset(urls, shardshuffle=False)
          .decode(walloc_io.wds_decoder(to="latents", output="torch"))
          .to_tuple("wlc", "cls"))

``to="signal"`` decodes each member fully in the worker, ``to="latents"`` gives the integer
latents (only entropy decoding runs), and ``to="deferred"`` gives :class:`Deferred` items
for :func:`walloc_io.collate` + :class:`walloc_io.BatchDecoder`, which run the decoder
network once per batch on the training device. The model is found from the stream's
fingerprint (or given), loaded once per worker process; the handler pickles.

Bad members raise a :class:`walloc_io.WallocError` (``BitstreamError`` for a corrupted
member, ``ModelMismatchError`` for one from an unknown model); webdataset wraps it in its
``DecodingError`` carrying the sample's key and shard (``.key``, ``.url``) and applies the
pipeline's handler: raise by default, skip with ``wds.warn_and_continue``.

Writing::

    with wds.ShardWriter("out-%06d.tar", maxcount=1000,
                         encoder=walloc_io.wds_encoder("rgb-16x")) as sink:
        sink.write({"__key__": key, "wlc": image_chw_uint8, "cls": label})
"""

from __future__ import annotations

from ..errors import InputError
from ..latents import TARGETS, Deferred
from ..presets import preset_for

EXTENSIONS = ("wlc",)


def matches(extensions: tuple[str, ...], key: str) -> bool:
    """webdataset's rule: the member's extension is one of ours or ends in ``.ours``
    (``extensions=("seg.wlc",)`` matches ``KEY.seg.wlc`` and not ``KEY.wlc``)."""
    key = key.lower()
    return any(key == e or key.endswith("." + e) for e in extensions)


class WlcDecoder:
    """A webdataset handler ``(key, data) -> value | None`` for ``.wlc`` members."""

    def __init__(self, codec=None, *, to: str = "signal", output: str = "numpy",
                 dequantise: bool = False, device: str = "cpu",
                 extensions: tuple[str, ...] = EXTENSIONS) -> None:
        if to not in TARGETS:
            raise InputError(f"to must be one of {TARGETS}, got {to!r}")
        if output not in ("numpy", "torch"):
            raise InputError(f"output must be 'numpy' or 'torch', got {output!r}")
        if dequantise and to != "latents":
            raise InputError("dequantise applies to to='latents' only")
        self.codec = codec  # a name, a directory, a Codec (pickles by reference) or None
        self.to, self.output, self.dequantise, self.device = to, output, dequantise, device
        self.extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self._loaded: dict = {}  # fingerprint -> codec, in this process (not pickled)

    def __repr__(self) -> str:
        return f"WlcDecoder(codec={self.codec!r}, to={self.to!r}, output={self.output!r})"

    def matches(self, key: str) -> bool:
        return matches(self.extensions, key)

    def __call__(self, key: str, data: bytes):
        if not self.matches(key):
            return None
        codec = self._codec(data)
        if self.to == "signal":
            value = codec.decode(data)
        else:
            header, codes = codec.read(data)
            if self.to == "deferred":
                return Deferred(codes, header)
            value = codes
            if self.dequantise:
                value = codec.dequantise(codes, header.quality)
        if self.output == "torch":
            import torch

            return torch.from_numpy(value)
        return value

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_loaded": {}}

    def _codec(self, data: bytes):
        from ..bitstream import peek_fingerprint

        loaded = self._loaded
        fingerprint = peek_fingerprint(data)  # codec.read verifies the whole stream
        if fingerprint in loaded:
            return loaded[fingerprint]
        from ..bitstream import read_header
        from ..codec import Codec, load_codec

        if isinstance(self.codec, Codec):
            return self.codec
        if fingerprint not in loaded:
            fingerprint = read_header(data).fingerprint  # magic, fields and checksum verified
            if self.codec is None:
                loaded[fingerprint] = load_codec(preset_for(fingerprint), device=self.device)
            else:  # the named codec, or the earlier version of it that made this stream
                loaded[fingerprint] = load_codec(self.codec, device=self.device,
                                                 fingerprint=fingerprint)
        return loaded[fingerprint]


def wds_decoder(codec=None, *, to: str = "signal", output: str = "numpy", dequantise: bool = False,
                device: str = "cpu", extensions: tuple[str, ...] = EXTENSIONS) -> WlcDecoder:
    """A handler for ``WebDataset.decode``: ``.wlc`` members -> signals, integer latents
    (``dequantise=True``: the float latents before companding) or :class:`Latents` items,
    as numpy arrays or torch tensors (see the module docstring).

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> blob = walloc_io.load_codec("rgb-16x", device="cpu").encode(np.zeros((3, 64, 64), np.uint8))
    >>> handler = walloc_io.wds_decoder(to="latents")
    >>> handler("wlc", blob).shape, handler("jpg", blob) is None     # None: not ours
    ((12, 8, 8), True)
    """
    return WlcDecoder(codec, to=to, output=output, dequantise=dequantise, device=device,
                      extensions=extensions)


class WlcEncoder:
    """An ``encoder=`` for ``wds.TarWriter`` / ``wds.ShardWriter``: fields named ``*.wlc``
    that hold a signal (numpy array or torch tensor, channel-first; or a ``(signal,
    sample_rate)`` pair for audio) become WaLLoC streams; bytes pass through; everything
    else goes to webdataset's default encoder (``fallback=False``: left as it is)."""

    def __init__(self, codec, *, sample_rate: int = 0, extensions: tuple[str, ...] = EXTENSIONS,
                 fallback: bool = True, quality: int | None = None) -> None:
        from ..quality import check_quality

        self.codec = codec
        self.sample_rate = sample_rate
        self.quality = check_quality(quality)
        self.extensions = tuple(e.lower().lstrip(".") for e in extensions)
        self.fallback = fallback
        self._loaded = None  # resolved once per process, on first use (not pickled)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_loaded": None}

    def _codec(self):
        if self._loaded is None:
            from ..codec import Codec, load_codec

            self._loaded = self.codec if isinstance(self.codec, Codec) else load_codec(
                self.codec, device="cpu")
        return self._loaded

    def __call__(self, sample: dict) -> dict:
        codec = self._codec()
        out = dict(sample)
        todo = [k for k, v in sample.items() if not k.startswith("_")
                and matches(self.extensions, k)
                and not isinstance(v, (bytes, bytearray, memoryview))]
        for k in todo:
            value, rate = sample[k], self.sample_rate
            if isinstance(value, tuple):
                value, rate = value
            try:
                out[k] = codec.encode(value, sample_rate=rate, quality=self.quality)
            except InputError as exc:
                raise InputError(f"sample {sample.get('__key__')!r}, field {k!r}: {exc}") from exc
        if self.fallback:
            from webdataset.writer import default_handlers, encode_based_on_extension

            out = encode_based_on_extension(out, default_handlers)
        return out


def wds_encoder(codec, *, sample_rate: int = 0, extensions: tuple[str, ...] = EXTENSIONS,
                fallback: bool = True, quality: int | None = None) -> WlcEncoder:
    """The ``encoder=`` hook for webdataset's writers (see :class:`WlcEncoder`).

    Examples
    --------
    >>> import tempfile, numpy as np, webdataset as wds, walloc_io
    >>> shard = tempfile.mkdtemp() + "/train-000000.tar"
    >>> with wds.TarWriter(shard, encoder=walloc_io.wds_encoder("gray-16x")) as sink:
    ...     _ = sink.write({"__key__": "a", "wlc": np.full((1, 32, 32), 90, np.uint8), "cls": 3})
    >>> data = wds.WebDataset(shard, shardshuffle=False).decode(walloc_io.wds_decoder())
    >>> sample = next(iter(data))
    >>> sample["wlc"].shape, sample["wlc"].dtype, sample["cls"]
    ((1, 32, 32), dtype('uint8'), 3)
    """
    return WlcEncoder(codec, sample_rate=sample_rate, extensions=extensions, fallback=fallback,
                      quality=quality)
