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
    ``scripts/tune_decoder.py`` does) keeps a ``tables.ref`` or ``ladder.ref`` likewise."""
    from . import VERSIONS, versions

    new = _weight_arrays(tmp)
    kept = {old_fp: d for old_fp, d in versions(out).items() if old_fp != fp}
    shared = {old_fp[:8] for old_fp, d in kept.items()
              if (d / f"weights-{old_fp[:8]}.npz").is_file()
              and _same_arrays(_weight_arrays(d / f"weights-{old_fp[:8]}.npz"), new)}
    shared_files = {name: {old_fp[:8] for old_fp, d in kept.items()
                           if (d / name).is_file() and (tmp / name).is_file()
                           and _same_arrays(_weight_arrays(d / name), _weight_arrays(tmp / name))}
                    for name in SHAREABLE}
    for old_fp, directory in kept.items():
        dest = tmp / VERSIONS / old_fp[:8]
        dest.mkdir(parents=True, exist_ok=True)
        for f in directory.iterdir():
            if not f.is_file():
                continue
            if f.name == f"weights-{old_fp[:8]}.npz" and old_fp[:8] in shared:
                (dest / f"weights-{old_fp[:8]}{REF}").write_text(fp[:8] + "\n")
            elif f.name.startswith("weights-") and f.suffix == REF \
                    and f.read_text().strip() in shared:  # no chains of refs
                (dest / f.name).write_text(fp[:8] + "\n")
            elif f.name in SHAREABLE and old_fp[:8] in shared_files[f.name]:
                (dest / (f.stem + REF)).write_text(fp[:8] + "\n")
            elif f.suffix == REF and f.stem + ".npz" in SHAREABLE \
                    and f.read_text().strip() in shared_files[f.stem + ".npz"]:
                (dest / f.name).write_text(fp[:8] + "\n")
            else:
                shutil.copy2(f, dest / f.name)


REF = ".ref"  # a kept version's weights: "these are the weights of model <fp8> of this preset"
SHAREABLE = ("tables.npz", "ladder.npz")  # tables.ref / ladder.ref: "model <fp8>'s file"


def _is_fp8(text: str) -> bool:
    return len(text) == 8 and all(ch in "0123456789abcdef" for ch in text)


def held_file(path: Path, name: str) -> Path | None:
    """The file holding a codec directory's ``name`` (``tables.npz`` or ``ladder.npz``):
    its own, or, for a kept version with a ``tables.ref``/``ladder.ref``, that of the model
    of the same preset the ref names; None when the directory has neither."""
    path = Path(path)
    if (path / name).is_file():
        return path / name
    ref = path / (Path(name).stem + REF)
    if not ref.is_file():
        return None
    target = ref.read_text().strip()
    root = path.parent.parent if path.parent.name == "versions" else path
    if _is_fp8(target):
        from . import manifest_fingerprint

        for candidate in (root, root / "versions" / target):
            fp = manifest_fingerprint(candidate) if candidate.is_dir() else None
            if fp is not None and fp.startswith(target) and (candidate / name).is_file():
                return candidate / name
    raise PresetError(f"{ref} names a model {target!r} whose {name} {root} does not hold")


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
    target = files[0].read_text().strip()
    root = path.parent.parent if path.parent.name == "versions" else path
    for candidate in (root, *sorted((root / "versions").glob("*"))):
        found = candidate / f"weights-{target}.npz"
        if _is_fp8(target) and found.is_file():
            return files[0], found
    raise PresetError(f"{files[0]} names weights {target!r} that {root} does not hold")


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
