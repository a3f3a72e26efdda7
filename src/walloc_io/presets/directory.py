"""Read and write codec directories (config + weights + frozen tables), with fingerprints."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..config import CodecConfig
from ..entropy import EntropyTables, ladder_ids, save_ladder
from ..errors import PresetError
from ..model import WallocModel

INFERENCE_PREFIXES = ("encoder.", "decoder.")  # the rate proxy is for training only


def inference_state(model: WallocModel) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().float().numpy() for k, v in sorted(model.state_dict().items())
            if k.startswith(INFERENCE_PREFIXES)}


def fingerprint(config: CodecConfig, weights: dict[str, np.ndarray], tables: EntropyTables) -> str:
    """32 hex digits of SHA-256 over config JSON, weights (name + float32 LE) and tables."""
    h = hashlib.sha256(config.to_json().encode())
    for name in sorted(weights):
        h.update(name.encode())
        h.update(np.ascontiguousarray(weights[name], dtype="<f4").tobytes())
    h.update(tables.digest())
    return h.hexdigest()[:32]


def ladder_manifest(ladder: dict[int, EntropyTables]) -> dict[str, str]:
    """The manifest's record of a quality ladder: ``ladder``, the id streams of qualities
    1..100 record, and ``floor_ladder`` (with floor rungs) that of the rungs above 100."""
    knob, floor = ladder_ids(ladder)
    return {"ladder": f"{knob:08x}", **({"floor_ladder": f"{floor:08x}"} if floor else {})}


def save_codec_dir(
    model: WallocModel, tables: EntropyTables, out: str | Path, extra: dict | None = None,
    keep_versions: bool = True, ladder: dict[int, EntropyTables] | None = None,
) -> Path:
    """Write a codec directory; built beside ``out`` and swapped in, so a crash mid-way
    leaves either the old directory or the new one, never a mix.

    When ``out`` already holds a different model and ``keep_versions`` is true, that model
    (and the versions it kept) moves to ``out/versions/<fingerprint8>/``, so everything it
    wrote stays decodable by fingerprint. ``ladder``: the quality ladder's tables
    (``ladder.npz``, see :mod:`walloc_io.quality`); streams record its id, not the
    fingerprint, so a ladder can be added to a model without changing its fingerprint."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp, old = out.with_name(f".{out.name}.partial"), out.with_name(f".{out.name}.old")
    for stale in (tmp, old):
        if stale.exists():
            shutil.rmtree(stale)
    tmp.mkdir()
    weights = inference_state(model)
    fp = fingerprint(model.config, weights, tables)
    # Any: mypy checks ``**`` values against ``allow_pickle: bool`` as well as ``**kwds``
    arrays: dict[str, Any] = weights
    np.savez(tmp / f"weights-{fp[:8]}.npz", **arrays)
    tables.save(tmp / "tables.npz")
    (tmp / "config.json").write_text(json.dumps(model.config.to_dict(), indent=1) + "\n")
    manifest: dict[str, Any] = {"fingerprint": fp, "format": 1, **(extra or {})}
    if ladder:
        save_ladder(ladder, tmp / "ladder.npz")
        manifest.update(ladder_manifest(ladder))
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    if keep_versions and out.is_dir():
        _keep_versions(out, tmp, fp)
    if out.exists():
        out.replace(old)
    tmp.replace(out)
    if old.exists():
        shutil.rmtree(old)
    return out


def _keep_versions(out: Path, tmp: Path, fp: str) -> None:
    """Copy the models ``out`` can decode, other than ``fp``, into ``tmp/versions/``. A kept
    model whose weights are the new model's (only its config or tables changed, as a rate
    allocation does) keeps a ``weights-<fp8>.ref`` naming the new model instead of a copy;
    one whose tables or quality ladder are the new model's (only its decoder changed, as
    ``scripts/tune_decoder.py`` does) keeps a ``tables.ref`` or ``ladder.ref`` likewise.
    A kept ref that named a file now shared is pointed at the new model: no chains."""
    from . import VERSIONS, versions

    kept = {old_fp[:8]: d for old_fp, d in versions(out).items() if old_fp != fp}
    new = {"weights": _weight_arrays(tmp),
           **{name: _weight_arrays(tmp / name) for name in SHAREABLE if (tmp / name).is_file()}}

    def own(d: Path, old8: str, role: str) -> Path:  # the file of ``role`` a version holds
        return d / (f"weights-{old8}.npz" if role == "weights" else role)

    shared = {role: {old8 for old8, d in kept.items() if own(d, old8, role).is_file()
                     and _same_arrays(_weight_arrays(own(d, old8, role)), arrays)}
              for role, arrays in new.items()}
    for old8, directory in kept.items():
        dest = tmp / VERSIONS / old8
        dest.mkdir(parents=True, exist_ok=True)
        for f in directory.iterdir():
            if not f.is_file():
                continue
            role = "weights" if f.name.startswith("weights-") else f.stem + ".npz"
            if role in shared and (old8 in shared[role] if f.suffix == ".npz" else
                                   f.suffix == REF and f.read_text().strip() in shared[role]):
                (dest / (f.stem + REF)).write_text(fp[:8] + "\n")
            else:
                shutil.copy2(f, dest / f.name)


REF = ".ref"  # a kept version's file held by another: "model <fp8> of this preset has it"
SHAREABLE = ("tables.npz", "ladder.npz")  # shared as tables.ref / ladder.ref


def _is_fp8(text: str) -> bool:
    return len(text) == 8 and all(ch in "0123456789abcdef" for ch in text)


def _referenced(ref: Path, name: str | None = None) -> Path:
    """The file a ``.ref`` names: ``name`` (by default ``weights-<fp8>.npz``) of model
    <fp8> of the same preset, the current one or a kept version."""
    from . import VERSIONS, manifest_fingerprint

    target = ref.read_text().strip()
    path = ref.parent
    root = path.parent.parent if path.parent.name == VERSIONS else path
    if _is_fp8(target):
        name = name or f"weights-{target}.npz"
        for candidate in (root, root / VERSIONS / target):
            if (manifest_fingerprint(candidate) or "").startswith(target) \
                    and (candidate / name).is_file():
                return candidate / name
    raise PresetError(f"{ref} names a model {target!r} whose {name or 'weights'} {root} "
                      "does not hold")


def held_file(path: Path, name: str) -> Path | None:
    """The file holding a codec directory's ``name`` (``tables.npz`` or ``ladder.npz``):
    its own, or, for a kept version with a ``tables.ref``/``ladder.ref``, that of the model
    of the same preset the ref names; None when the directory has neither."""
    path = Path(path)
    if (path / name).is_file():
        return path / name
    ref = path / (Path(name).stem + REF)
    return _referenced(ref, name) if ref.is_file() else None


def _weight_arrays(path: Path) -> dict[str, np.ndarray]:
    """The arrays of a weights file, or of the one weights file in a codec directory."""
    if path.is_dir():
        path = next(path.glob("weights-*.npz"))
    with np.load(path) as z:
        return {k: z[k] for k in z.files}


def _same_arrays(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


def _weights_file(path: Path) -> tuple[Path, Path]:
    """A codec directory's weights entry (``weights-*.npz``, or ``weights-*.ref``) and the
    file holding the arrays: itself, or the one the ``.ref`` names (searched in the preset
    that holds this directory; the fingerprint check follows)."""
    files = [f for f in path.glob("weights-*") if f.suffix in (".npz", REF)]
    if len(files) != 1:
        raise PresetError(f"{path} must hold exactly one weights-*.npz, found {len(files)}")
    if files[0].suffix != REF:
        return files[0], files[0]
    return files[0], _referenced(files[0])


def load_codec_dir(path: Path) -> tuple[WallocModel, EntropyTables, str]:
    """Model (eval mode, CPU), tables and verified fingerprint of a codec directory."""
    try:
        config = CodecConfig.from_json((path / "config.json").read_text())
        entry, held = _weights_file(path)
        weights = _weight_arrays(held)
        tables = EntropyTables.load(held_file(path, "tables.npz") or path / "tables.npz")
    except (OSError, ValueError, KeyError) as exc:
        raise PresetError(f"cannot read codec directory {path}: {exc}") from exc
    fp = fingerprint(config, weights, tables)
    if entry.name not in (f"weights-{fp[:8]}.npz", f"weights-{fp[:8]}{REF}"):
        raise PresetError(f"{entry} does not match its fingerprint {fp[:8]}: corrupt weights")
    model = WallocModel(config)
    missing = model.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()},
                                    strict=False).missing_keys
    if [k for k in missing if k.startswith(INFERENCE_PREFIXES)]:
        raise PresetError(f"{path} lacks weights: {missing}")
    return model.eval(), tables, fp
