"""What ``walloc convert`` reads: planning tasks from a source (folders, shards, arrays,
HDF5/NetCDF variables), reading and checking items.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ...errors import InputError

TEXT_MEMBER_LIMIT = 65536  # shard members kept as Zarr attributes: UTF-8 text up to this size


def plan(src: str, modality: str, items_per_task: int, fmt: str = "zarr", band: int = 0,
         channels: int = 0) -> tuple[str, list[dict]]:
    """``(kind, tasks)``, kind ``"folder"``, ``"shards"`` or ``"array"``; each task is a
    dict with an ``id`` (its marker's name). Array tasks are ``items_per_task`` rows of the
    first axis times, with ``band``, bands of ``band`` samples along the first signal axis
    (shard-aligned, so a task's memory is bounded by its band, not by the array). A 2-D
    image array with a one-channel codec (``channels=1``) is one signal ``(H, W)``."""
    from .. import shards as wds_shards

    path, variable = _split_variable(src)
    if variable is None and wds_shards.is_shard_source(src):
        return "shards", [{"id": f"shard-{name}", "shard": str(p), "name": name}
                          for p in wds_shards.list_shards(src)
                          for name in [wds_shards.shard_name(path, p)]]
    if _is_array_source(path, variable):
        shape = _open_array(path, variable).shape
        if len(shape) < 2:
            raise InputError(f"{src}: array of shape {shape} has no item axis")
        single = single_field(shape, modality, channels)
        n = 1 if single else shape[0]
        axis = len(shape) - (2 if modality == "image" else 1)  # the first signal axis
        length = shape[axis] if band else 0
        bands = [(b, min(b + band, length)) for b in range(0, length, band)] if band else [None]
        if len(bands) == 1:
            bands = [None]
        tasks = []
        for i in range(0, n, items_per_task):
            for cut in bands:
                task = {"id": f"rows-{i:08d}" + (f"-band-{cut[0]:08d}" if cut else ""),
                        "start": i, "stop": min(i + items_per_task, n), "path": str(path),
                        "variable": variable, "name": f"shard-{i // items_per_task:06d}.tar"}
                if cut:
                    task.update(axis=axis, band=list(cut))
                if single:
                    task["single"] = True
                tasks.append(task)
        return "array", tasks
    from ...media import signal_files

    files = signal_files(path, modality)
    root = path if path.is_dir() else path.parent
    items = [{"file": str(f), "name": "__".join(f.relative_to(root).with_suffix("").parts)}
             for f in files]
    if fmt == "webdataset":  # many items per shard
        return "folder", [{"id": f"shard-{i // items_per_task:06d}",
                           "name": f"shard-{i // items_per_task:06d}.tar",
                           "items": items[i:i + items_per_task]}
                          for i in range(0, len(items), items_per_task)]
    return "folder", [{"id": f"item-{it['name']}", "items": [it]} for it in items]


def single_field(shape: tuple[int, ...], modality: str, channels: int) -> bool:
    """A 2-D image array for a one-channel codec: one signal, stored as ``(1, H, W)``."""
    return modality == "image" and len(shape) == 2 and channels == 1


def _split_variable(src: str) -> tuple[Path, str | None]:
    head, sep, tail = src.rpartition(":")
    if sep and head and Path(head).suffix.lower() in (".h5", ".hdf5", ".nc", ".nc4", ".cdf") and tail:
        return Path(head), tail
    return Path(src), None


def _is_array_source(path: Path, variable: str | None) -> bool:
    return variable is not None or (path / "zarr.json").exists() or (path / ".zarray").exists()


def _open_array(path: Path, variable: str | None):
    """A lazily sliceable array: Zarr array, h5py dataset or NetCDF variable."""
    if not path.exists():
        raise InputError(f"{path} does not exist")
    if variable is None:
        import zarr

        return zarr.open_array(path, mode="r")
    if path.suffix.lower() in (".h5", ".hdf5"):
        import h5py

        f = h5py.File(path, "r")
        if variable not in f:
            raise InputError(f"{path} has no dataset {variable!r} (has {sorted(map(str, f))})")
        return f[variable]
    import xarray as xr

    ds = xr.open_dataset(path, mask_and_scale=False)
    if variable not in ds:
        raise InputError(f"{path} has no variable {variable!r} (has {sorted(map(str, ds.data_vars))})")
    if ds[variable].dtype.kind == "f":  # float fields: missing values become NaN
        ds = xr.open_dataset(path, mask_and_scale=True)
    return ds[variable]


def _read_item(codec, file: str, name: str, data: bytes | None = None, bounded: bool = False):
    """One item as a :class:`~walloc_io.media.Signal`, checked against the codec (and, for
    an error-bounded conversion, float)."""
    from ...media import read_signal

    sig = read_signal(file, data)
    _check_item(codec, sig.data, name)
    if bounded and sig.data.dtype.kind != "f":
        raise InputError(f"{name}: --max-abs-error applies to float signals, this one is "
                         f"{sig.data.dtype}")
    return sig


def _signal_fields(codec, fields: dict[str, bytes]) -> list[str]:
    from ...media import SUFFIXES

    suffixes = SUFFIXES[codec.config.modality]
    return [f for f in fields if "." + f.rsplit(".", 1)[-1].lower() in suffixes]


def _text_members(fields: dict[str, bytes], signal_fields: list[str]) -> dict[str, str]:
    out = {}
    for member, data in fields.items():
        if member in signal_fields or len(data) > TEXT_MEMBER_LIMIT:
            continue
        try:
            out[member] = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
    return out


def _wlc_field(member: str, fields: dict, chosen: set) -> str:
    """``jpg`` -> ``wlc``, ``seg.png`` -> ``seg.wlc``; ``png.wlc`` if that name is taken."""
    stem = member.rpartition(".")[0]
    name = f"{stem}.wlc" if stem else "wlc"
    return name if name not in fields and name not in chosen else f"{member}.wlc"


def _check_row(codec, row: np.ndarray, name: str, nan: str = "raise") -> None:
    """An array source's row: a signal of the codec's layout, finite (NaN allowed with
    ``nan="mask"``; Inf never)."""
    _check_item(codec, row, name)
    if row.dtype.kind == "f" and not np.isfinite(row).all():
        if nan == "raise" or np.isinf(row).any():
            raise InputError(f"{name} contains {'Inf' if np.isinf(row).any() else 'NaN'}"
                             + (" (use --nan mask)" if not np.isinf(row).any() else ""))


def _check_item(codec, data: np.ndarray, name: str) -> None:
    from ...codecs.chunk import check_layout

    cfg = codec.config
    if data.ndim != cfg.signal_ndim + 1:
        raise InputError(f"{name}: expected a {cfg.signal_ndim + 1}-d signal, got shape {data.shape}")
    check_layout(cfg, data.shape, data.dtype)
