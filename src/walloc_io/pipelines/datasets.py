"""Map-style torch datasets over WaLLoC-encoded Zarr stores.

    ds = walloc_io.ZarrDataset("photos.zarr", to="latents")          # int32 latents
    loader = DataLoader(ds, batch_size=32, num_workers=4)
    ds = walloc_io.ZarrDataset("photos.zarr", to="deferred")         # decoded per batch:
    loader = DataLoader(ds, batch_size=32, num_workers=4, collate_fn=walloc_io.collate)

Items are the arrays of a ``walloc convert`` store's ``items/`` group (whole signals of any
size), or the rows (axis 0) of one array (``signals``, or any WaLLoC array with leading
axes). ``to="signal"`` reads through zarr (the codec decodes), ``to="latents"`` reads the
stored chunk records and runs only entropy decoding, assembling an item's latents across
its chunks, and ``to="deferred"`` hands :class:`Deferred` items to
:func:`walloc_io.collate` / :class:`walloc_io.BatchDecoder` (one chunk per item along the
signal axes). Workers reopen the store by path, and load the model once per process.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import InputError
from ..latents import TARGETS, Deferred


class ZarrDataset(torch.utils.data.Dataset):
    """Items of a WaLLoC Zarr store as tensors (see the module docstring).

    ``attrs``: names of array attributes to return with each item (group items only; a
    name is looked up in the array's attributes, then in the ``members`` that ``walloc
    convert`` keeps from shard sources, e.g. ``"cls"``): items become tuples.
    ``transform`` is applied to the signal / latents.

    Examples
    --------
    >>> import tempfile, numpy as np, zarr, walloc_io
    >>> path = tempfile.mkdtemp() + "/photos.zarr"
    >>> a = zarr.create_array(path, shape=(4, 1, 32, 32), chunks=(2, 1, 32, 32), dtype="uint8",
    ...                       serializer={"name": "walloc", "configuration": {"preset": "gray-16x"}})
    >>> a[:] = np.arange(4, dtype=np.uint8)[:, None, None, None] * 60
    >>> ds = walloc_io.ZarrDataset(path, to="latents")
    >>> len(ds), tuple(ds[0].shape), ds[0].dtype
    (4, (4, 4, 4), torch.int32)
    """

    def __init__(self, source, *, to: str = "signal", output: str = "torch",
                 attrs: Sequence[str] = (), transform=None) -> None:
        import zarr

        if to not in TARGETS:
            raise InputError(f"to must be one of {TARGETS}, got {to!r}")
        if output not in ("numpy", "torch"):
            raise InputError(f"output must be 'numpy' or 'torch', got {output!r}")
        self.to, self.output, self.attrs, self.transform = to, output, tuple(attrs), transform
        self.path = str(source) if isinstance(source, (str, Path)) else None
        node = zarr.open(self.path, mode="r") if self.path else source
        self._node = node
        self.rows: int | None = None  # items are rows of one array, or whole arrays
        self._single = False  # one array that is a single item (no leading axes)
        self._stored: dict = {}  # name -> StoredArray, in this process (not pickled)
        if isinstance(node, zarr.Group) and "items" in node:
            items = node["items"]
            assert isinstance(items, zarr.Group)  # walloc convert writes a group of arrays
            self.names: list[str | None] = list(sorted(items.array_keys()))
        else:
            if isinstance(node, zarr.Group) and "signals" not in node:
                raise InputError(f"{source}: a group without 'items' or 'signals'")
            self.names = ["signals" if isinstance(node, zarr.Group) else None]
            stored = self._stored_array(self.names[0])
            ndim = stored.codec().config.signal_ndim + 1
            self.rows = stored.shape[0] if len(stored.shape) > ndim else 1
            self._single = len(stored.shape) == ndim
        if self.attrs and self.rows is not None:
            raise InputError("attrs are per item array: this store holds one array of rows")

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_stored"] = {}
        if self.path is not None:
            state["_node"] = None  # reopened by path in the worker
        return state

    def __len__(self) -> int:
        return self.rows if self.rows is not None else len(self.names)

    def _array(self, name):
        import zarr

        if self._node is None:
            self._node = zarr.open(self.path, mode="r")
        if name is None:
            return self._node
        return self._node[name] if name == "signals" else self._node["items"][name]

    def _stored_array(self, name):
        from ..codecs.stored import StoredArray

        if name not in self._stored:
            self._stored[name] = StoredArray(self._array(name))
        return self._stored[name]

    def __getitem__(self, index: int):
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} items")
        index %= n
        name = self.names[0] if self.rows is not None else self.names[index]
        lead = (index,) if self.rows is not None and not self._single else ()
        value: Any
        if self.to == "signal":
            value = np.asarray(self._array(name)[lead or ...])
        else:
            value = item_latents(self._stored_array(name), lead, deferred=self.to == "deferred")
        if self.to != "deferred":
            if self.output == "torch":
                value = torch.from_numpy(np.ascontiguousarray(value))
            if self.transform is not None:
                value = self.transform(value)
        if not self.attrs:
            return value
        arr = self._array(name)
        return (value, *(_attr(arr, a, str(name)) for a in self.attrs))


def _attr(arr, key: str, name: str):
    attrs = arr.attrs.asdict()
    if key in attrs:
        return attrs[key]
    members = attrs.get("members", {})
    if key not in members:
        raise KeyError(f"item {name!r} has no attribute or member {key!r}")
    value = members[key]
    try:  # webdataset-style label members ("cls") hold integers as text
        return int(value)
    except ValueError:
        return value


def item_latents(stored, lead: tuple[int, ...], deferred: bool = False):
    """Integer latents of the item at leading index ``lead`` of a WaLLoC array, assembled
    across the item's chunks (no decoder network); or, with ``deferred``, its stream as a
    :class:`Deferred` (the item must lie in one chunk)."""
    from ..codecs.chunk import decode_chunks, latent_chunk_shape, unpack

    codec = stored.codec("cpu")
    cfg = codec.config
    nd = cfg.signal_ndim + 1
    if len(stored.shape) != len(lead) + nd:
        raise InputError(f"array of shape {stored.shape}: give one index per leading axis")
    chunk_lead = tuple(i // c for i, c in zip(lead, stored.chunks))
    within = tuple(i % c for i, c in zip(lead, stored.chunks))
    grid = stored.grid[len(lead):]
    coords = [chunk_lead + rest for rest in itertools.product(*(range(g) for g in grid))]
    records = [r or stored.fill_record for r in stored.records(coords)]
    if deferred:
        if len(records) > 1:
            raise InputError(f"to='deferred' needs each item in one chunk; this array's items span "
                             f"{len(records)} chunks (chunks {stored.chunks}): use to='signal'")
        rec = unpack(records[0])
        flat = int(np.ravel_multi_index(within, rec.shape[:len(lead)])) if lead else 0
        header, codes = codec.read(rec.streams[flat])
        return Deferred(codes, header)
    pieces = [lat[within] for lat in decode_chunks(codec, records, to="latents")]
    size = pieces[0].shape
    full = latent_chunk_shape(cfg, stored.shape[len(lead):], stored.channel_last)
    out = np.zeros(tuple(g * s for g, s in zip(grid, size)), dtype=pieces[0].dtype)
    for c, piece in zip(coords, pieces):
        at = tuple(slice(k * s, k * s + p) for k, s, p in zip(c[len(lead):], size, piece.shape))
        out[at] = piece
    return out[tuple(slice(0, n) for n in full)]
