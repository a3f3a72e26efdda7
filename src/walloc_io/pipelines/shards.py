"""WebDataset tar shards with the standard library: list, read (grouped into samples), write.

WebDataset's convention: a member ``dir/name.field.ext`` belongs to the sample whose key is
``dir/name`` (everything before the first dot of the file name) and is its field
``field.ext``; a sample's members are consecutive. Shards written here are deterministic
(sorted fields, mtime 0), so converting the same input twice gives identical bytes, and
they appear atomically (temporary sibling, then a rename).
"""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

from ..errors import InputError

Sample = tuple[str, dict[str, bytes]]  # (key, {field: bytes}), fields in tar order


def list_shards(source: str | Path) -> list[Path]:
    """A ``.tar`` file, a folder of ``.tar`` files (searched recursively), or a brace
    pattern such as ``data/shard-{000000..000009}.tar``."""
    text = str(source)
    if "{" in text:
        try:
            from braceexpand import braceexpand
        except ImportError as exc:  # webdataset depends on it
            raise InputError("brace patterns need the braceexpand package "
                             "(pip install walloc-io[webdataset])") from exc
        paths = [Path(p) for p in braceexpand(text)]
        missing = [str(p) for p in paths if not p.is_file()]
        if missing:
            raise InputError(f"{len(missing)} shards of {text} do not exist, e.g. {missing[0]}")
        return paths
    path = Path(text)
    if not path.exists():
        raise InputError(f"{path} does not exist")
    shards = [path] if path.is_file() else sorted(path.rglob("*.tar"))
    if not shards:
        raise InputError(f"no .tar shards under {path}")
    return shards


def is_shard_source(source: str | Path) -> bool:
    text = str(source)
    if text.endswith(".tar") and ("{" in text or Path(text).is_file()):
        return True
    path = Path(text)
    return path.is_dir() and any(path.rglob("*.tar")) and not (
        (path / "zarr.json").exists() or (path / ".zarray").exists() or (path / ".zgroup").exists())


def split_name(name: str) -> tuple[str, str]:
    """``"dir/abc.seg.png"`` -> ``("dir/abc", "seg.png")``."""
    folder, _, base = name.rpartition("/")
    stem, dot, field = base.partition(".")
    if not dot or not stem:
        return "", ""
    return (f"{folder}/{stem}" if folder else stem), field


def read_samples(shard: str | Path) -> Iterator[Sample]:
    """The samples of one shard, in order. A damaged or truncated shard raises
    :class:`InputError` naming it (after the samples read intact)."""
    key: str | None = None
    fields: dict[str, bytes] = {}
    try:
        with tarfile.open(shard, mode="r:*") as tar:
            for member in tar:
                if not member.isfile():
                    continue
                k, field = split_name(member.name)
                if not k:
                    continue  # not part of any sample (e.g. a README)
                if k != key:
                    if key is not None:
                        yield key, fields
                    key, fields = k, {}
                f = tar.extractfile(member)
                data = f.read() if f is not None else b""
                if len(data) != member.size:
                    raise tarfile.ReadError(f"member {member.name} is truncated")
                if field in fields:
                    raise InputError(f"{shard}: sample {k} has field {field!r} twice")
                fields[field] = data
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InputError(f"{shard}: damaged or truncated tar in sample {key!r}: {exc}") from exc
    if key is not None:
        yield key, fields


def shard_bytes(samples: list[Sample]) -> bytes:
    """A deterministic tar holding ``samples`` (fields sorted, as webdataset's TarWriter)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for key, fields in samples:
            for field in sorted(fields):
                data = fields[field]
                info = tarfile.TarInfo(f"{key}.{field}")
                info.size, info.mtime, info.mode = len(data), 0, 0o444
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def write_shard(path: str | Path, samples: list[Sample]) -> int:
    """Write ``samples`` to ``path`` atomically; returns the shard's size in bytes."""
    from ..media import write_atomic

    data = shard_bytes(samples)
    write_atomic(path, data)
    return len(data)


def shard_name(source: Path, shard: Path) -> str:
    """The output name of ``shard`` relative to the source (folders flattened with ``__``)."""
    root = source if source.is_dir() else shard.parent
    try:
        rel = shard.relative_to(root)
    except ValueError:
        rel = Path(shard.name)
    return "__".join(rel.parts)


__all__ = ["is_shard_source", "list_shards", "read_samples", "shard_bytes", "split_name",
           "write_shard", "shard_name"]
