"""The :class:`Codec`: signals <-> ``.wlc`` streams, one batched tensor call per shape group."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import threading
import warnings
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import bitstream, boundary
from . import quality as _quality
from .bitstream import Header
from .config import CodecConfig
from .entropy import EntropyTables, LatentCoder, format1, ladder_ids, load_ladder, residual
from .errors import BitstreamError, InputError, ModelMismatchError
from .latents import Latents
from .model import WallocModel
from .model.analysis import NativeAnalysis, NativeSynthesis
from .model.decoder import BlockPrecision
from .presets import find_version, manifest_fingerprint, resolve, versions
from .presets.directory import held_file, load_codec_dir
from .signal import (
    RANGE_DTYPES,
    Prepared,
    as_numpy,
    check_sample_rate,
    prepare,
    restore,
    restore_float,
    unit_uint8,
)


def pick_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"auto"``: CUDA when present, else CPU. ``"cuda"`` without CUDA falls back.

    Anything but ``None``, ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or such a
    :class:`torch.device` is an :class:`InputError`.
    """
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.type not in ("cpu", "cuda"):
        raise InputError(f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N', "
                         f"got {device!r}")
    device = parsed
    if device.type == "cuda" and not torch.cuda.is_available():
        warnings.warn("CUDA requested but not available; using the CPU", RuntimeWarning,
                      stacklevel=3)
        return torch.device("cpu")
    return device


PRECISIONS = ("auto", "float32", "bfloat16")
BFLOAT16_KEY = "bfloat16"  # manifest entry of scripts/check_precision.py's measurement


@functools.cache
def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX-BF16, as Linux's
    ``/proc/cpuinfo`` lists them): there bfloat16 convolutions run about twice as fast as
    float32 ones. False where that cannot be read (bfloat16 would then be emulated)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = {f for line in text.splitlines() if line.startswith("flags")
             for f in line.split(":", 1)[1].split()}
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def pick_precision(precision: str | None, device: torch.device, checked: bool = False
                   ) -> torch.dtype | None:
    """The dtype of the decoder's residual blocks for ``precision`` (None: the
    ``WALLOC_PRECISION`` environment variable, else ``"auto"``); None for float32.
    ``"auto"``: bfloat16 for a model whose manifest records that it was ``checked`` in
    bfloat16 (``scripts/check_precision.py``: on validation content no pixel moves by more
    than one level of 255, with the blocks it lists kept in float32) on a CPU that computes
    bfloat16 natively; float32 elsewhere (CUDA
    keeps its TF32 convolutions). ``"float32"``: always; ``"bfloat16"``: always, checked
    or not. Error-bounded streams are always decoded in float32 (:meth:`Codec.synthesise`)."""
    if precision is None:
        precision = os.environ.get("WALLOC_PRECISION", "auto")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "bfloat16" or (precision == "auto" and checked and device.type == "cpu"
                                   and native_bfloat16()):
        return torch.bfloat16
    return None


class Codec:
    """A trained WaLLoC codec: ``encode`` signals to ``.wlc`` bytes, ``decode`` them back.

    Obtain one with :func:`walloc_io.load_codec`. Signals are channel-first, ``(C, H, W)``
    for image codecs and ``(C, T)`` for audio codecs, numpy or torch, in uint8, uint16,
    int16, float32 or float64, of any size of at least ``2**levels`` per axis (padded, then
    cropped on decode). Codecs pickle by reference (preset name or directory), so they can
    be shipped to Dask and DataLoader workers, where they are loaded once per process.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("rgb-16x", device="cpu")
    >>> image = np.random.default_rng(0).integers(0, 256, (3, 64, 96), dtype=np.uint8)
    >>> blob = codec.encode(image)
    >>> codec.decode(blob).shape, codec.decode(blob).dtype
    ((3, 64, 96), dtype('uint8'))
    >>> codec.decode_latents(blob).shape
    (12, 8, 12)
    """

    def __init__(
        self, model: WallocModel, tables: EntropyTables, fingerprint: str,
        device: str | torch.device | None = None, source: str | None = None,
        ladder: dict[int, EntropyTables] | None = None, rate_floor: float = 0.0,
        precision: str | None = None, bfloat16: dict | None = None,
    ) -> None:
        self.device = pick_device(device)
        # the residual blocks' arithmetic (runtime state: see pick_precision); ``bfloat16``:
        # the manifest's record of scripts/check_precision.py, with the blocks it keeps
        dtype = pick_precision(precision, self.device, bfloat16 is not None)
        keep = tuple(int(b) for b in (bfloat16 or {}).get("float32_blocks", ()))
        self.reduced = None if dtype is None else BlockPrecision(dtype, keep)
        self.model = model.eval().to(self.device)
        self.tables, self.fingerprint, self.source = tables, fingerprint, source
        self.coder = LatentCoder(tables)  # format 2 (native); format 1 streams use constriction
        self.ladder = dict(ladder or {})  # quality rung -> tables (walloc_io.quality)
        # the id streams of qualities 1..100 record: the knob's rungs only, so a ladder
        # extended by floor rungs later still decodes the streams coded before
        self.ladder_id, self.floor_ladder_id = ladder_ids(self.ladder)
        self.floor_rungs = tuple(r for r in _quality.FLOOR_RUNGS if r in self.ladder)
        self._coders: dict[int, LatentCoder] = {}
        # quality=None: signals whose design-point stream would spend fewer bits per latent
        # than this are coded at the lowest rung that reaches it (smooth, dark, low-contrast
        # content, which an MSE-trained rate term starves); 0: no floor
        self.rate_floor = float(rate_floor) if self.ladder else 0.0
        self._lock = threading.Lock()  # torch modules are not re-entrant across threads
        self._analysis: NativeAnalysis | None = None
        # decode on the CPU with the C inverse transform (runtime state; False: torch's
        # convolution form, as walloc-io 0.9 and before; bounded streams always use torch's).
        # load_codec shares one Codec per process: setting it changes every user's decoding
        self.native_synthesis = self.device.type == "cpu"
        self._synthesis: NativeSynthesis | None = None

    @property
    def config(self) -> CodecConfig:
        return self.model.config

    @property
    def dimensionality_reduction(self) -> float:
        return self.config.dimensionality_reduction

    def __repr__(self) -> str:
        return (f"Codec({self.config.name!r}, dr={self.dimensionality_reduction:g}, "
                f"fingerprint={self.fingerprint[:12]}, device={self.device})")

    def __reduce__(self):
        if self.source is None:
            raise TypeError("only codecs loaded from a preset or directory can be pickled")
        return load_codec, (self.source, str(self.device), None, self.precision)

    @property
    def precision(self) -> str:
        """``"bfloat16"`` where the decoder's hidden layers run in bfloat16, else
        ``"float32"`` (see :func:`pick_precision`)."""
        return "float32" if self.reduced is None else "bfloat16"

    # -- encoding ---------------------------------------------------------------------------
    def encode(self, x, *, sample_rate: int = 0, quality: int | None = None,
               max_abs_error: float | None = None) -> bytes:
        """One signal -> one ``.wlc`` stream.

        ``quality``: an integer in 1..100 (higher: more bits, higher fidelity; see
        :mod:`walloc_io.quality`; 50 is the preset's design point) or ``None``, the default:
        the design point, raised to the lowest quality rung that spends at least
        :attr:`rate_floor` bits per latent for signals that would get fewer, up to the
        floor rungs above 100 (the stream records the quality used).

        Images whose axes are all at least 256 are coded as the periodic-plus-smooth split
        (:mod:`walloc_io.boundary`): the latents code the periodic part, the stream carries
        the border jumps, and every decode path adds the smooth part back.

        ``max_abs_error``: for float signals, a guaranteed bound: every decoded value lies
        within it of the input (WaLLoC's reconstruction plus an entropy-coded residual, see
        :mod:`walloc_io.entropy.residual`); the latents are the same as without it.

        Examples
        --------
        >>> import numpy as np, walloc_io
        >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
        >>> x = np.random.default_rng(0).integers(0, 256, (1, 64, 64), dtype=np.uint8)
        >>> sizes = [len(codec.encode(x, quality=q)) for q in (10, 50, 90)]
        >>> sizes == sorted(sizes), codec.decode(codec.encode(x, quality=90)).shape
        (True, (1, 64, 64))
        """
        return self.encode_batch([x], sample_rate=sample_rate, quality=quality,
                                 max_abs_error=max_abs_error)[0]

    def encode_batch(self, xs: Sequence, *, sample_rate: int = 0, quality: int | None = None,
                     max_abs_error: float | None = None,
                     skip: Sequence[np.ndarray | None] | None = None) -> list[bytes]:
        """Many signals -> streams; same-size signals share one tensor call.

        ``skip``: with ``max_abs_error``, per signal a boolean mask (or None) of values the
        bound need not hold for (NaN positions the caller filled and restores itself)."""
        sample_rate = check_sample_rate(sample_rate)
        if max_abs_error is not None:
            xs = [as_numpy(x) for x in xs]
            eps = [residual.check_bound(max_abs_error, x.dtype.name) for x in xs]
            if skip is not None and len(skip) != len(xs):
                raise InputError(f"{len(skip)} skip masks for {len(xs)} signals")
        floor = quality is None and self.rate_floor > 0
        q = self.check_quality(quality)
        cfg = self.config
        native = self.device.type == "cpu"
        split = [self._split(prepare(x, cfg.channels, cfg.signal_ndim, 2 ** cfg.levels,
                                     raw_uint8=native)) for x in xs]
        latents = self._grouped([p for p, _ in split], lambda p: (p.data.shape, p.data.dtype),
                                lambda items: self._encode_stack(items, _quality.step(q)))
        blobs = [self._pack_floored(p, z, sample_rate, side) if floor
                 else self._pack(p, z, sample_rate, q, boundary=side)
                 for (p, side), z in zip(split, latents)]
        if max_abs_error is not None:
            blobs = self._bound(blobs, list(xs), eps, skip or [None] * len(xs))
        return blobs

    def _bound(self, blobs: list[bytes], xs: list[np.ndarray], eps: list[float],
               skip: Sequence[np.ndarray | None]) -> list[bytes]:
        """Add the error-bounded residual to each stream: the decoder's reconstruction
        (as :meth:`decode_batch` computes it) plus integers on a grid of ~2 eps."""
        read = self.read_many(blobs)
        predictions = self._grouped(read, lambda r: r[1].shape,
                                    lambda items: self._decode_stack(items, exact=True))
        f = 2 ** self.config.levels
        out = []
        for blob, x, e, mask, (h, codes), y in zip(blobs, xs, eps, skip, read, predictions):
            pred = restore_float(y, h.dtype, h.shape, h.normalisation)
            bins = residual.energy_bins(codes, f, h.shape, h.channels)
            body = residual.encode(x, pred, e, bins, h.normalisation, mask)
            header, payload = bitstream.unpack(blob)
            header = dataclasses.replace(header, version=bitstream.EXTENDED_VERSION,
                                         residual=body)
            out.append(bitstream.pack(header, payload))
        return out

    def _split(self, p: Prepared) -> tuple[Prepared, bytes | None]:
        """The periodic part of a large enough image (and the boundary extension's body
        that gives back the smooth part, :mod:`walloc_io.boundary`), or ``p`` as it is."""
        if self.config.modality != "image" or not boundary.applies(p.data.shape[1:]):
            return p, None
        u = unit_uint8(p.data) if p.data.dtype == np.uint8 else p.data
        body, smooth = boundary.split(u)
        return dataclasses.replace(p, data=(u - smooth).astype(np.float32)), body

    def _pack_floored(self, p: Prepared, z: np.ndarray, sample_rate: int,
                      side: bytes | None = None) -> bytes:
        """The design-point stream of latents ``z``, or that of the lowest rung above it whose
        stream reaches :attr:`rate_floor` bits per latent (the top rung if none does; the
        floor rungs above ``q = 100`` when the ladder holds them)."""
        need = self.rate_floor * z.size / 8  # bytes of payload and boundary side information
        extra = len(side or b"")
        q, payload = None, self.coder.encode(z)
        for rung in (*(r for r in _quality.RUNGS if r > _quality.DESIGN), *self.floor_rungs):
            if len(payload) + extra >= need:
                break  # else, rungs exhausted: the top rung's stream
            q = rung
            z = self._encode_stack([p], _quality.step(q))[0]
            payload = self.coder_for(q).encode(z)
        return self._pack(p, z, sample_rate, q, payload, side)

    def _ladder_of(self, q: int | None) -> int:
        """The ladder id a stream of quality ``q`` records (0 for the design point)."""
        if q is None:
            return 0
        return self.floor_ladder_id if _quality.is_floor(q) else self.ladder_id

    def check_quality(self, q) -> int | None:
        """``q`` as streams store it (None: the design point), or an InputError for a value
        out of 1..100 or a codec without a quality ladder."""
        q = _quality.check_quality(q)
        if q is not None and not self.ladder:
            raise InputError(f"codec {self.config.name} has no quality ladder (ladder.npz): "
                             "only quality=None (its design point) is available")
        return q

    def _encode_stack(self, items: list[Prepared], step: float = 1.0) -> list[np.ndarray]:
        x = np.stack([p.data for p in items])
        if self.device.type == "cpu":  # the C analysis: deterministic, GIL released
            return list(self.analysis.latents(x, step))
        t = torch.from_numpy(unit_uint8(x) if x.dtype == np.uint8 else x).to(self.device)
        with self._lock, torch.inference_mode():
            z = self.model.encode_latents(t, step).cpu().numpy()
        return list(z)

    def coder_for(self, q: int | None) -> LatentCoder:
        """The entropy coder of quality ``q`` (its ladder rung's tables)."""
        if q is None:
            return self.coder
        r = _quality.rung(q)
        if r not in self._coders:
            tables = self.tables if r == _quality.DESIGN else self.ladder.get(r)
            if tables is None:
                raise ModelMismatchError(f"codec {self.config.name} has no tables for quality "
                                         f"rung {r}")
            self._coders[r] = LatentCoder(tables)
        return self._coders[r]

    @property
    def synthesis(self) -> NativeSynthesis:
        """The inverse packet transform as one C call (built on first use)."""
        if self._synthesis is None:
            cfg = self.config
            self._synthesis = NativeSynthesis(cfg.channels, cfg.levels, cfg.signal_ndim)
        return self._synthesis

    @property
    def analysis(self) -> NativeAnalysis:
        """The encoder half of the model as one C call (built on first use)."""
        if self._analysis is None:
            self._analysis = NativeAnalysis(self.model)
        return self._analysis

    def _pack(self, p: Prepared, latents: np.ndarray, sample_rate: int,
              q: int | None = None, payload: bytes | None = None,
              boundary: bytes | None = None) -> bytes:
        extended = q is not None or boundary is not None
        header = Header(self.config.modality, self.config.entropy_model, p.dtype,
                        self.fingerprint, self.config.channels, p.shape, p.padding,
                        latents.shape[0], latents.shape[1:], p.normalisation, sample_rate,
                        bitstream.EXTENDED_VERSION if extended else bitstream.FORMAT_VERSION,
                        q, self._ladder_of(q), boundary=boundary)
        if payload is None:
            payload = self.coder_for(q).encode(latents)
        return bitstream.pack(header, payload)

    # -- decoding ---------------------------------------------------------------------------
    def read(self, blob: bytes) -> tuple[Header, np.ndarray]:
        """Verify a stream against this codec and entropy-decode it (no network)."""
        header, payload = bitstream.unpack(blob)
        self.check(header)
        shape = (header.latent_channels, *header.latent_shape)
        return header, self._entropy_decode(header.version, [payload], shape, header.quality)[0]

    def _entropy_decode(self, version: int, payloads: list[bytes], shape: tuple[int, ...],
                        q: int | None = None):
        """Same-shape payloads of one format version and quality -> latents. Formats 2 and
        3: one native call; format 1: constriction, each payload first checked against its
        capacity (with a factor 2 margin: constriction rescales the tables' probabilities)."""
        if version != 1:
            return list(self.coder_for(q).decode_many(payloads, shape))
        for p in payloads:
            self.coder.check_capacity(len(p), shape, margin=2.0)
        return [format1.decode(p, shape, self.tables) for p in payloads]

    def read_many(self, blobs: Sequence[bytes]) -> list[tuple[Header, np.ndarray]]:
        """:meth:`read` for many streams: same-shape streams of format 2 are entropy-decoded
        in one native call (GIL released); format 1 streams one by one (constriction)."""
        parsed = [bitstream.unpack(b) for b in blobs]
        groups: dict = defaultdict(list)
        for i, (header, _) in enumerate(parsed):
            self.check(header)
            groups[(header.version, (header.latent_channels, *header.latent_shape),
                    header.quality)].append(i)
        out: list = [None] * len(parsed)
        for (version, shape, q), index in groups.items():
            latents = self._entropy_decode(version, [parsed[i][1] for i in index], shape, q)
            for i, z in zip(index, latents):
                out[i] = (parsed[i][0], z)
        return out

    def decode_latents(self, blob: bytes) -> np.ndarray:
        """Integer latents ``(latent_channels, *latent_shape)`` without the decoder network.

        They are codes on the stream's quantisation grid: for a stream of a quality other
        than the design point, :meth:`dequantise` (given its ``header.quality``) puts them on
        the common scale."""
        return self.read(blob)[1]

    def entropy_decode(self, blob: bytes) -> Latents:
        """A stream -> :class:`~walloc_io.latents.Latents` (codes + header), for loaders
        that run the decoder network later, batched (:meth:`reconstruct`)."""
        header, codes = self.read(blob)
        return Latents(codes, header)

    def reconstruct(self, codes, headers: Sequence[Header], *, output: str = "signal"):
        """Batched decoder network on this codec's device for entropy-decoded streams.

        ``codes`` ``(N, L, *latent_shape)`` (numpy or torch), one verified header each.
        ``output="signal"``: each item as :meth:`decode` gives it (dtype and range), as torch
        tensors on the device; ``"unit"``: float32 in ``[0, 1]``. One stacked tensor when all
        items share shape and dtype, else a list.
        """
        if output not in ("signal", "unit"):
            raise InputError(f"output must be 'signal' or 'unit', got {output!r}")
        for h in headers:
            self.check(h)
            if h.residual is not None and output == "signal":
                raise InputError("an error-bounded stream's bound needs its residual: decode "
                                 "it with Codec.decode / decode_batch (reconstruct gives the "
                                 "WaLLoC reconstruction only with output='unit')")
        y = self.synthesise(codes, [_quality.step(h.quality) for h in headers], clamp=False)
        if any(h.boundary is not None for h in headers):
            y = y + torch.stack([torch.from_numpy(_smooth(h)) if h.boundary is not None
                                 else torch.zeros(y.shape[1:]) for h in headers]).to(y)
        y = y.clamp(-0.5, 0.5)
        shapes = {(h.shape, h.dtype) for h in headers}
        if len(shapes) == 1 and output == "unit":
            return _crop(y, headers[0].shape).add(0.5).clamp_(0, 1)
        out = [_restore_tensor(y[i], h) if output == "signal"
               else _crop(y[i], h.shape).add(0.5).clamp_(0, 1) for i, h in enumerate(headers)]
        return torch.stack(out) if len(shapes) == 1 else out

    def decode_latents_batch(self, blobs: Sequence[bytes]) -> list[np.ndarray]:
        """:meth:`decode_latents` for many streams (batched entropy decoding)."""
        return [z for _, z in self.read_many(blobs)]

    def decode(self, blob: bytes) -> np.ndarray:
        """One stream -> the signal, in its original shape and dtype."""
        return self.decode_batch([blob])[0]

    def decode_batch(self, blobs: Sequence[bytes]) -> list[np.ndarray]:
        """Many streams -> signals; same-size latents share one tensor call."""
        read = self.read_many(blobs)
        signals = self._grouped(read, lambda r: r[1].shape, self._decode_stack)
        return [self._restore(s, h, z) for (h, z), s in zip(read, signals)]

    def _restore(self, y: np.ndarray, h: Header, codes: np.ndarray) -> np.ndarray:
        """The network's output -> the signal (with the residual of a bounded stream)."""
        if h.residual is None:
            return restore(y, h.dtype, h.shape, h.normalisation)
        pred = restore_float(y, h.dtype, h.shape, h.normalisation)
        bins = residual.energy_bins(codes, 2 ** self.config.levels, h.shape, h.channels)
        return residual.decode(h.residual, pred, bins, h.dtype, h.normalisation)

    def steps(self, quality: int | None = None) -> np.ndarray:
        """Each latent channel's quantisation step (companded domain) at a stream's stored
        ``quality`` (``header.quality``; None: the design point), float64 ``(L,)``: the
        quality's step, times the channel's gain where the model has a rate allocation
        (``config.step_gains``, see :mod:`walloc_io.quality`). Codes times these steps are
        on one scale for streams of every quality."""
        cfg = self.config
        return _quality.channel_steps(_quality.step(quality), cfg.step_gains, cfg.latent_channels)

    def dequantise(self, latents: np.ndarray, quality: int | None = None) -> np.ndarray:
        """Integer latents ``(..., L, *latent_axes)`` of a stream of ``quality`` -> the linear
        encoder's float outputs (codes times the channels' :meth:`steps`, companding
        inverted), float32: one scale for streams of every quality."""
        y = torch.from_numpy(np.ascontiguousarray(latents)).float()
        steps = torch.from_numpy(self.steps(quality).astype(np.float32))
        # channels are the axis before the signal axes (blocks may lead with more axes)
        y = y * steps.reshape(-1, *(1,) * self.config.signal_ndim)
        with torch.inference_mode():
            return self.model.companding.inverse(y).numpy()

    def synthesise(self, latents, steps: Sequence[float] | float = 1.0, exact: bool = False,
                   clamp: bool = True) -> torch.Tensor:
        """Batched decoder network: integer latents ``(N, L, ...)`` -> signals in [-1/2, 1/2]
        on this codec's device (for loaders that batch latents from many workers). For a
        stream with a boundary extension (``header.boundary``) that is the periodic part:
        :meth:`reconstruct` adds the smooth part (``clamp=False``: the network's output
        before the clamp to [-1/2, 1/2], for such a caller).
        ``steps``: the quantisation step of every item (one for all, or one each;
        ``walloc_io.quality.step(header.quality)``; the model applies its channels' gains).
        ``exact``: full float32 arithmetic (TF32 convolutions off on CUDA, no bfloat16 hidden
        layers, see :func:`pick_precision`, and torch's inverse transform rather than the C
        one of :attr:`native_synthesis`), as error-bounded streams need: their residual
        assumes the reconstruction within float32 rounding of the encoder's."""
        z = torch.as_tensor(np.asarray(latents) if not torch.is_tensor(latents) else latents)
        step: float | torch.Tensor
        if isinstance(steps, (int, float)):
            step = float(steps)
        else:
            each = [float(v) for v in steps]
            step = each[0] if len(set(each)) == 1 else torch.tensor(each)
        native = self.native_synthesis and not exact and self.device.type == "cpu"
        with self._lock, torch.inference_mode(), _full_float32(exact and self.device.type == "cuda"):
            return self.model.decode_latents(z.to(self.device), step, clamp=clamp,
                                             reduced=None if exact else self.reduced,
                                             inverse=self.synthesis.inverse if native else None)

    def _decode_stack(self, items: list[tuple[Header, np.ndarray]], exact: bool = False
                      ) -> list[np.ndarray]:
        """The decoder network on same-shape latents (``exact``, or any bounded stream among
        them: full float32, see :meth:`synthesise`)."""
        y = self.synthesise(np.stack([z for _, z in items]),
                            [_quality.step(h.quality) for h, _ in items],
                            exact=exact or any(h.residual is not None for h, _ in items),
                            clamp=False).float().cpu().numpy()
        return [np.clip(v if h.boundary is None else v + _smooth(h), -0.5, 0.5)
                for v, (h, _) in zip(y, items)]

    @staticmethod
    def _grouped(items: list, key, run) -> list:
        """Apply ``run`` to groups of items sharing ``key``; results in the input order."""
        groups: dict = defaultdict(list)
        for i, item in enumerate(items):
            groups[key(item)].append(i)
        out: list = [None] * len(items)
        for index in groups.values():
            for i, result in zip(index, run([items[i] for i in index])):
                out[i] = result
        return out

    def for_fingerprint(self, fingerprint: str) -> Codec:
        """This codec, or the earlier version of its preset/directory that made streams of
        ``fingerprint`` (kept under ``versions/`` when it was retrained), on this device;
        :class:`ModelMismatchError` if it holds no such model."""
        if fingerprint == self.fingerprint:
            return self
        if self.source is None:
            raise ModelMismatchError(f"stream was made by model {fingerprint[:12]}, not by this "
                                     f"codec ({self.config.name}, {self.fingerprint[:12]})")
        return load_codec(self.source, device=self.device, fingerprint=fingerprint,
                          precision=self.precision)

    def check(self, h: Header) -> None:
        """Raise unless ``h`` is a header this codec can decode (fingerprint, shapes)."""
        cfg = self.config
        if h.fingerprint != self.fingerprint:
            raise ModelMismatchError(
                f"stream was made by model {h.fingerprint[:12]}, not by this codec "
                f"({cfg.name}, {self.fingerprint[:12]})")
        wanted = self._ladder_of(h.quality)
        if h.quality is not None and h.ladder != wanted:
            kind = ("quality ladder with floor rungs" if _quality.is_floor(h.quality)
                    else "quality ladder")
            raise ModelMismatchError(
                f"stream of quality {h.quality} was coded with {kind} {h.ladder:08x}; this "
                f"codec's is {wanted:08x}" if wanted else
                f"stream of quality {h.quality} needs a {kind}; codec {cfg.name} has none")
        f = 2 ** cfg.levels
        expected = tuple((n + p) // f for n, p in zip(h.shape, h.padding))
        if (h.modality != cfg.modality or h.channels != cfg.channels
                or h.latent_channels != cfg.latent_channels or h.entropy_model != cfg.entropy_model
                or any(p >= f or (n + p) % f for n, p in zip(h.shape, h.padding))
                or h.latent_shape != expected):
            raise BitstreamError(f"stream header is inconsistent with codec {cfg.name}: {h}")
        if h.normalisation is None and h.dtype not in ("uint8", "int16"):
            raise BitstreamError(f"stream of dtype {h.dtype} lacks its normalisation")
        if h.residual is not None and np.dtype(h.dtype).kind != "f":
            raise BitstreamError(f"stream of dtype {h.dtype} carries an error-bounded residual")
        if h.boundary is not None and not boundary.applies(_padded(h)):
            raise BitstreamError(f"stream of padded shape {_padded(h)} carries a boundary "
                                 f"extension (only 2-D signals of axes >= {boundary.MIN_SIZE})")


def _padded(h: Header) -> tuple[int, ...]:
    return tuple(n + p for n, p in zip(h.shape, h.padding))


def _smooth(h: Header) -> np.ndarray:
    """The smooth part of a stream with a boundary extension, float32 ``(C, *padded)``."""
    assert h.boundary is not None
    return boundary.smooth(h.boundary, h.channels, _padded(h))


def _crop(y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    index: tuple[Any, ...] = (Ellipsis, *(slice(0, n) for n in shape))
    return y[index]


def _full_float32(on: bool):
    """A context with TF32 off for cuDNN convolutions and CUDA matmuls (when ``on``)."""
    import contextlib

    if not on:
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def context():
        matmul = torch.backends.cuda.matmul.allow_tf32
        torch.backends.cuda.matmul.allow_tf32 = False
        try:
            with torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
                yield
        finally:
            torch.backends.cuda.matmul.allow_tf32 = matmul

    return context()


_TORCH_DTYPES = {"uint8": torch.uint8, "int16": torch.int16, "uint16": torch.uint16,
                 "float32": torch.float32, "float64": torch.float64}


def _restore_tensor(y: torch.Tensor, h: Header) -> torch.Tensor:
    """:func:`walloc_io.signal.restore` on the device (the same formula, in torch)."""
    v = _crop(y, h.shape).double() + 0.5
    low: float | torch.Tensor
    span: float | torch.Tensor
    if h.normalisation is None:
        low, span = RANGE_DTYPES[h.dtype]
    else:
        norm = torch.as_tensor(np.asarray(h.normalisation), dtype=torch.float64, device=y.device)
        bshape = (-1,) + (1,) * len(h.shape)
        low, span = norm[:, 0].reshape(bshape), norm[:, 1].reshape(bshape)
    v = v * span + low
    if np.dtype(h.dtype).kind in "iu":
        info = np.iinfo(h.dtype)
        v = v.round().clamp(info.min, info.max)
        if h.dtype == "uint16":  # few torch ops take uint16: go through int32
            return v.to(torch.int32).to(torch.uint16)
    return v.to(_TORCH_DTYPES[h.dtype])


_CACHE: dict[tuple[str, str, str | None, str], Codec] = {}
_CACHE_LOCK = threading.Lock()


def load_codec(
    name_or_path: str | Path, device: str | torch.device | None = None,
    fingerprint: str | None = None, precision: str | None = None,
) -> Codec:
    """Open a preset (see :func:`list_presets`) or a codec directory written by training.

    Codecs are cached per process and device, so repeated calls (e.g. from a numcodecs
    codec in every Dask task) load the weights once. The cache is keyed by the directory's
    recorded fingerprint too, so a directory rewritten in this process (training twice to
    one folder) is loaded afresh.

    Parameters
    ----------
    name_or_path : str or Path
        A preset name (:func:`walloc_io.list_presets`) or a codec directory.
    device : str, torch.device or None
        ``None``/``"auto"``: CUDA when present, else the CPU; ``"cpu"``, ``"cuda"``,
        ``"cuda:N"``. Anything else is an :class:`~walloc_io.InputError`.
    fingerprint : str, optional
        Open this model of the directory: its current one or an earlier version kept
        under ``versions/`` when it was retrained (a :class:`~walloc_io.ModelMismatchError` if it
        holds neither), e.g. the fingerprint of an old stream's header.
    precision : str, optional
        The decoder's arithmetic: ``"auto"`` (the default, or the ``WALLOC_PRECISION``
        environment variable): its residual blocks in bfloat16 on a CPU that computes
        bfloat16 natively, for models checked in it (their decoded pixels move by at most
        one level of 255), float32 elsewhere; ``"float32"``; ``"bfloat16"``. Streams and
        latents are the same either way (see :func:`pick_precision`).

    Examples
    --------
    >>> import walloc_io
    >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
    >>> codec.config.channels, codec.dimensionality_reduction
    (1, 16.0)
    >>> walloc_io.load_codec("gray-16x", device="cpu") is codec
    True
    """
    path = resolve(name_or_path)
    if fingerprint is not None and fingerprint != manifest_fingerprint(path):
        version = find_version(path, fingerprint)
        if version is None:
            raise ModelMismatchError(f"{name_or_path} holds no model {fingerprint[:12]} (its "
                              f"versions: {', '.join(f[:12] for f in versions(path))})")
        name_or_path = path = version
    dev = pick_device(device)
    manifest = json.loads((path / "manifest.json").read_text())
    checked = manifest.get(BFLOAT16_KEY)
    hidden = pick_precision(precision, dev, checked is not None)
    key = (str(path), str(dev), manifest_fingerprint(path), str(hidden))
    with _CACHE_LOCK:
        if key not in _CACHE:
            model, tables, fp = load_codec_dir(path)
            source = name_or_path if isinstance(name_or_path, str) and not Path(
                name_or_path).exists() else str(path)
            held = held_file(path, "ladder.npz")
            ladder = load_ladder(held) if held is not None else None
            _CACHE[key] = Codec(model, tables, fp, dev, source=source, ladder=ladder,
                                rate_floor=manifest.get("rate_floor", 0.0),
                                precision="float32" if hidden is None else "bfloat16",
                                bfloat16=checked)
        return _CACHE[key]


__all__ = ["Codec", "InputError", "load_codec"]
