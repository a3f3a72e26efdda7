"""Pretrained codecs shipped in the package: one directory per preset.

A codec directory holds ``config.json``, ``weights-<fingerprint8>.npz``, ``tables.npz``
and ``manifest.json`` (fingerprint, training summary). ``walloc train`` writes the same
layout, so ``load_codec`` opens user codecs and presets alike.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelMismatchError, PresetError

PRESET_DIR = Path(__file__).resolve().parent


def list_presets() -> list[str]:
    """Names of the presets shipped in this installation."""
    return sorted(d.name for d in PRESET_DIR.iterdir() if (d / "config.json").is_file())


def manifest_fingerprint(directory: Path) -> str | None:
    """The fingerprint a codec directory's ``manifest.json`` records (None without one)."""
    import json

    manifest = Path(directory) / "manifest.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("fingerprint")


def find_by_fingerprint(fingerprint: str) -> str | None:
    """The preset whose manifest records ``fingerprint`` (reads JSON only, loads no weights)."""
    import json

    for name in list_presets():
        manifest = PRESET_DIR / name / "manifest.json"
        if manifest.is_file() and json.loads(manifest.read_text()).get("fingerprint") == fingerprint:
            return name
    return None


def preset_for(fingerprint: str) -> str:
    """The shipped preset that made streams of ``fingerprint``, or :class:`ModelMismatchError`."""
    name = find_by_fingerprint(fingerprint)
    if name is None:
        raise ModelMismatchError(f"stream made by model {fingerprint[:12]}, which no installed "
                                 "preset is: pass the codec directory that made it (--codec DIR)")
    return name


def load_config(name_or_path: str | Path):
    """The :class:`~walloc_io.config.CodecConfig` of a preset or codec directory, read from
    its ``config.json`` alone: no torch, no weights (for validating layouts cheaply)."""
    from ..config import CodecConfig

    return CodecConfig.from_json((resolve(name_or_path) / "config.json").read_text())


def resolve(name_or_path: str | Path) -> Path:
    """A preset name or a codec directory -> the codec directory."""
    if not isinstance(name_or_path, (str, Path)):
        raise PresetError(f"expected a preset name ({', '.join(list_presets())}) or a codec "
                          f"directory path, got {type(name_or_path).__name__} {name_or_path!r}")
    path = Path(name_or_path)
    if (path / "config.json").is_file():
        return path.resolve()
    if isinstance(name_or_path, str) and (PRESET_DIR / name_or_path / "config.json").is_file():
        return PRESET_DIR / name_or_path
    raise PresetError(f"no preset or codec directory {str(name_or_path)!r}; "
                      f"presets: {', '.join(list_presets()) or 'none installed'}")
