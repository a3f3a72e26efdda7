"""Batched decoding on the training device: entropy decoding in the loader's CPU workers,
the decoder network once per batch on the GPU (or the CPU when there is none).

Loader workers produce :class:`Deferred` items (integer latents + their stream header; see
``wds_decoder(to="deferred")`` and ``ZarrDataset(to="deferred")``); :func:`collate` stacks
them into a :class:`DeferredBatch` (other fields as ``default_collate`` would), and a
:class:`BatchDecoder` turns that into signals in one tensor call::

    loader = DataLoader(dataset, batch_size=64, num_workers=4, collate_fn=walloc_io.collate)
    decode = walloc_io.BatchDecoder("rgb-16x", device="cuda", output="unit")
    for batch, label in loader:
        x = decode(batch)              # (64, 3, H, W) float32 in [0, 1], on the GPU

``output="signal"`` gives exactly what :meth:`Codec.decode` gives per item (original dtype
and value range); ``output="unit"`` the normalised signal in [0, 1] as float32, what a
training loop usually wants.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..bitstream import Header, read_header
from ..errors import InputError, ModelMismatchError
from ..presets import preset_for
from ..signal import RANGE_DTYPES

OUTPUTS = ("signal", "unit")
TARGETS = ("signal", "latents", "deferred")  # what loaders hand on: see wds_decoder, ZarrDataset


class Deferred(NamedTuple):
    """One entropy-decoded stream whose decoder network has not run yet."""

    codes: np.ndarray  # integer latents (L, *latent_shape)
    header: Header


class DeferredBatch(NamedTuple):
    """Stacked :class:`Deferred` items: ``codes`` ``(N, L, *latent_shape)`` and one header each."""

    codes: torch.Tensor
    headers: list[Header]

    def __len__(self) -> int:  # type: ignore[override]
        return len(self.headers)

    def pin_memory(self) -> DeferredBatch:  # DataLoader(pin_memory=True)
        return DeferredBatch(self.codes.pin_memory(), self.headers)

    @classmethod
    def stack(cls, items: Sequence[Deferred]) -> DeferredBatch:
        shapes = {d.codes.shape for d in items}
        if len(shapes) > 1:
            raise InputError(f"cannot batch latents of different shapes {sorted(shapes)}: give the "
                             "loader same-size signals (crop) or use batch_size=1")
        return cls(torch.from_numpy(np.stack([d.codes for d in items])), [d.header for d in items])


def collate(batch: Sequence):
    """``collate_fn`` for DataLoader (or ``collation_fn`` for webdataset's ``.batched``):
    :class:`Deferred` items become a :class:`DeferredBatch`; dicts, tuples and everything
    else are collated as torch's ``default_collate`` does."""
    from torch.utils.data import default_collate

    elem = batch[0]
    if isinstance(elem, Deferred):
        return DeferredBatch.stack(batch)
    if isinstance(elem, Mapping):
        return {k: collate([b[k] for b in batch]) for k in elem}
    if isinstance(elem, (tuple, list)):
        if len({len(b) for b in batch}) != 1:
            raise InputError("samples in a batch have different numbers of fields")
        fields = [collate(list(f)) for f in zip(*batch)]
        if hasattr(elem, "_fields"):  # a namedtuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    return default_collate(batch)


class BatchDecoder(torch.nn.Module):
    """Decoder network + inverse transform for a whole batch, on ``device``.

    ``codec``: a preset name, codec directory or :class:`Codec`; ``None`` picks the preset
    from the streams' fingerprints. Accepts a :class:`DeferredBatch`, a list of
    :class:`Deferred` or a list of ``.wlc`` streams (entropy-decoded here, then). Returns
    one stacked tensor when all items have the same shape and dtype, else a list.
    """

    def __init__(self, codec=None, *, device: str = "auto", output: str = "signal") -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        from ..codec import pick_device

        self.device = pick_device(device)
        self.output = output
        self._codec = None if codec is None else _load(codec, self.device)

    def codec_for(self, headers: Sequence[Header]):
        fingerprints = {h.fingerprint for h in headers}
        if len(fingerprints) > 1:
            raise ModelMismatchError(f"a batch mixes streams of {len(fingerprints)} models")
        if self._codec is None:
            self._codec = _load(preset_for(headers[0].fingerprint), self.device)
        return self._codec

    def forward(self, batch, *, output: str | None = None):
        output = output or self.output
        if output not in OUTPUTS:
            raise InputError(f"output must be one of {OUTPUTS}, got {output!r}")
        if not isinstance(batch, DeferredBatch):
            batch = DeferredBatch.stack([self._deferred(b) for b in batch])
        codec = self.codec_for(batch.headers)
        for h in batch.headers:
            codec._check(h)
        y = codec.synthesise(batch.codes.to(self.device, non_blocking=True))
        shapes = {(h.shape, h.dtype) for h in batch.headers}
        if len(shapes) == 1 and output == "unit":
            return _crop(y, batch.headers[0].shape).add(0.5).clamp_(0, 1)
        out = [_restore(y[i], h) if output == "signal" else _crop(y[i], h.shape).add(0.5).clamp_(0, 1)
               for i, h in enumerate(batch.headers)]
        return torch.stack(out) if len(shapes) == 1 else out

    def _deferred(self, item) -> Deferred:
        if isinstance(item, Deferred):
            return item
        if isinstance(item, (bytes, bytearray, memoryview)):
            header = read_header(bytes(item))
            codec = self.codec_for([header])
            return Deferred(*reversed(codec.read(bytes(item))))
        raise InputError(f"cannot decode a {type(item).__name__}: expected Deferred items or "
                         ".wlc streams")


def _load(codec, device):
    from ..codec import Codec, load_codec

    if isinstance(codec, Codec):
        return codec if codec.device == device else load_codec(codec.source, device=device)
    return load_codec(codec, device=device)


def _crop(y: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return y[(..., *(slice(0, n) for n in shape))]


_TORCH_DTYPES = {"uint8": torch.uint8, "int16": torch.int16, "uint16": torch.uint16,
                 "float32": torch.float32, "float64": torch.float64}


def _restore(y: torch.Tensor, h: Header) -> torch.Tensor:
    """:func:`walloc_io.signal.restore` on the device."""
    v = _crop(y, h.shape).double() + 0.5
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
