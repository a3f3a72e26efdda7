"""Pretrained codecs shipped in the package: one directory per preset.

A codec directory holds ``config.json``, ``weights-<fingerprint8>.npz``, ``tables.npz``
and ``manifest.json`` (fingerprint, training summary). ``walloc train`` writes the same
layout, so ``load_codec`` opens user codecs and presets alike.

A codec retrained into the same directory keeps its earlier models under
``versions/<fingerprint8>/`` (each a whole codec directory), so streams and stores written
by any earlier version still find their model by fingerprint (:func:`find_version`).
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelMismatchError, PresetError

PRESET_DIR = Path(__file__).resolve().parent


def list_presets() -> list[str]:
    """Names of the presets shipped in this installation.

    Examples
    --------
    >>> from walloc_io import list_presets
    >>> {"rgb-16x", "gray-16x", "stereo-20x"} <= set(list_presets())
    True
    """
    return sorted(d.name for d in PRESET_DIR.iterdir() if (d / "config.json").is_file())


def manifest_fingerprint(directory: Path) -> str | None:
    """The fingerprint a codec directory's ``manifest.json`` records (None without one)."""
    import json

    manifest = Path(directory) / "manifest.json"
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("fingerprint")


VERSIONS = "versions"


def versions(directory: str | Path) -> dict[str, Path]:
    """Every model a codec directory can decode: fingerprint -> codec directory, the
    current model first, then the earlier ones kept under ``versions/`` (JSON only).

    Examples
    --------
    >>> from walloc_io.presets import PRESET_DIR, versions
    >>> current = versions(PRESET_DIR / "gray-16x")
    >>> next(iter(current.values())) == PRESET_DIR / "gray-16x"
    True
    """
    directory = Path(directory)
    found: dict[str, Path] = {}
    fp = manifest_fingerprint(directory)
    if fp is not None:
        found[fp] = directory
    old = directory / VERSIONS
    if old.is_dir():
        for d in sorted(old.iterdir()):
            fp = manifest_fingerprint(d) if (d / "config.json").is_file() else None
            if fp is not None and fp not in found:
                found[fp] = d
    return found


def find_version(directory: str | Path, fingerprint: str) -> Path | None:
    """The codec directory (``directory`` itself or one of its kept versions) whose model is
    ``fingerprint``, or None."""
    return versions(directory).get(fingerprint)


def find_by_fingerprint(fingerprint: str) -> str | None:
    """The preset whose model is ``fingerprint``: its name when it is the current model, the
    path of its kept version when an earlier one (reads JSON only, loads no weights)."""
    for name in list_presets():
        found = find_version(PRESET_DIR / name, fingerprint)
        if found is not None:
            return name if found == PRESET_DIR / name else str(found)
    return None


def preset_for(fingerprint: str) -> str:
    """The shipped preset (or kept earlier version of one) that made streams of
    ``fingerprint``, as :func:`walloc_io.load_codec` takes it, or :class:`ModelMismatchError`.

    Examples
    --------
    >>> from walloc_io.presets import PRESET_DIR, manifest_fingerprint, preset_for
    >>> preset_for(manifest_fingerprint(PRESET_DIR / "rgb-4x"))
    'rgb-4x'
    """
    name = find_by_fingerprint(fingerprint)
    if name is None:
        raise ModelMismatchError(f"stream made by model {fingerprint[:12]}, which no installed "
                                 "preset is: pass the codec directory that made it (--codec DIR)")
    return name


def load_config(name_or_path: str | Path):
    """The :class:`~walloc_io.config.CodecConfig` of a preset or codec directory, read from
    its ``config.json`` alone: no torch, no weights (for validating layouts cheaply).

    Examples
    --------
    >>> from walloc_io import load_config
    >>> c = load_config("stereo-20x")
    >>> c.modality, c.channels, c.levels, c.latent_channels
    ('audio', 2, 8, 27)
    """
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
