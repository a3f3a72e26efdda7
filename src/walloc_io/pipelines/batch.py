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

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch

from ..bitstream import Header, read_header
from ..errors import InputError, ModelMismatchError
from ..latents import TARGETS, Deferred, Latents
from ..presets import preset_for

OUTPUTS = ("signal", "unit")
__all__ = ["TARGETS", "BatchDecoder", "Deferred", "DeferredBatch", "Latents", "collate"]


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
    :class:`Latents` items become a :class:`DeferredBatch`; dicts, tuples and everything
    else are collated by torch's own ``collate`` with its default ``collate_fn_map``
    (torch's extension hook for exactly this), so nothing of its recursion is copied.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("rgb-16x", device="cpu")
    >>> items = [(codec.entropy_decode(codec.encode(np.zeros((3, 64, 64), np.uint8))), i)
    ...          for i in range(2)]
    >>> batch, labels = walloc_io.collate(items)
    >>> tuple(batch.codes.shape), labels.tolist()
    ((2, 12, 8, 8), [0, 1])
    >>> tuple(walloc_io.BatchDecoder(codec, device="cpu", output="unit")(batch).shape)
    (2, 3, 64, 64)
    """
    from torch.utils.data._utils.collate import collate as torch_collate
    from torch.utils.data._utils.collate import default_collate_fn_map

    def stack(items, *, collate_fn_map=None):
        return DeferredBatch.stack(items)

    try:
        return torch_collate(batch, collate_fn_map={Latents: stack, **default_collate_fn_map})
    except RuntimeError as exc:
        if "each element in list of batch should be of equal size" in str(exc):
            raise InputError("samples in a batch have different numbers of fields") from None
        raise

class BatchDecoder(torch.nn.Module):
    """Decoder network + inverse transform for a whole batch, on ``device``.

    ``codec``: a preset name, codec directory or :class:`Codec`; ``None`` picks the preset
    from the streams' fingerprints. Accepts a :class:`DeferredBatch`, a list of
    :class:`Deferred` or a list of ``.wlc`` streams (entropy-decoded here, then). Returns
    one stacked tensor when all items have the same shape and dtype, else a list.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
    >>> blobs = [codec.encode(np.full((1, 32, 48), v, np.uint8)) for v in (40, 200)]
    >>> decoder = walloc_io.BatchDecoder("gray-16x", device="cpu")
    >>> y = decoder([codec.entropy_decode(b) for b in blobs])  # e.g. a DataLoader's batch
    >>> tuple(y.shape), y.dtype
    ((2, 1, 32, 48), torch.uint8)
    >>> tuple(decoder(blobs, output="unit").shape)  # float in [-1/2, 1/2], for a network
    (2, 1, 32, 48)
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
        return codec.reconstruct(batch.codes.to(self.device, non_blocking=True), batch.headers,
                                 output=output)

    def to(self, *args, **kwargs):  # the model lives in the codec, not in registered modules
        device = torch.device(args[0] if args else kwargs.get("device", self.device))
        if device != self.device:
            from ..codec import pick_device

            self.device = pick_device(device)
            self._codec = None if self._codec is None else _load(self._codec, self.device)
        return self

    def _deferred(self, item) -> Latents:
        if isinstance(item, Latents):
            return item
        if isinstance(item, (bytes, bytearray, memoryview)):
            header = read_header(bytes(item))
            return self.codec_for([header]).entropy_decode(bytes(item))
        raise InputError(f"cannot decode a {type(item).__name__}: expected Deferred items or "
                         ".wlc streams")


def _load(codec, device):
    from ..codec import Codec, load_codec

    if isinstance(codec, Codec):
        return codec if codec.device == device else load_codec(
            codec.source, device=device, precision=codec.precision)
    return load_codec(codec, device=device)
