"""The one options object of the storage faces: what a Zarr store records about its codec.

:class:`ChunkCodecOptions` is shared by the numcodecs codec, the Zarr v3 codec and
``walloc convert``. It is JSON only and portable: the codec is named by preset or directory
*and* by fingerprint, and runtime state (the decoding device, a loaded model) is never part
of it. Opening a store finds the model by fingerprint when the name no longer matches it:
among the installed presets, then in the codec directories listed in the environment
variable ``WALLOC_CODEC_PATH`` (``os.pathsep``-separated; each entry a codec directory or a
folder of them). So a store made with ``--codec /home/me/my-codec`` opens on another machine
that has the same codec anywhere on that path. Reading the options imports no torch.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, PresetError
from ..presets import manifest_fingerprint
from ..quality import check_quality
from ..signal import check_sample_rate

NAN_POLICIES = ("raise", "mask")
LEGACY_KEYS = ("device",)  # written by walloc-io 0.1; accepted and ignored on read


def search_path() -> list[Path]:
    """Codec directories named by ``WALLOC_CODEC_PATH`` (folders of them are expanded)."""
    out = []
    for entry in filter(None, os.environ.get("WALLOC_CODEC_PATH", "").split(os.pathsep)):
        p = Path(entry)
        if (p / "config.json").is_file():
            out.append(p)
        elif p.is_dir():
            out += sorted(d for d in p.iterdir() if (d / "config.json").is_file())
    return out


def find_codec_dir(fingerprint: str) -> Path | None:
    """The installed preset or ``WALLOC_CODEC_PATH`` directory (or a version either kept when
    retrained) whose model is ``fingerprint``."""
    from ..presets import PRESET_DIR, find_by_fingerprint, find_version

    name = find_by_fingerprint(fingerprint)  # a preset name, or the path of a kept version
    if name is not None:
        return PRESET_DIR / name
    return next((v for d in search_path() if (v := find_version(d, fingerprint)) is not None),
                None)


@dataclass(frozen=True)
class ChunkCodecOptions:
    """How chunks are coded: the codec (``preset`` or ``path``, and its ``fingerprint``) and
    the chunk options of :mod:`walloc_io.codecs.chunk`.

    Examples
    --------
    >>> opts = ChunkCodecOptions(preset="rgb-16x")
    >>> opts.to_config()["fingerprint"] == opts.resolved_fingerprint()
    True
    >>> ChunkCodecOptions.from_config({"preset": "rgb-16x", "device": "cuda"}).channel_last
    False
    """

    preset: str | None = None
    path: str | None = None
    fingerprint: str | None = None
    channel_last: bool = False
    nan: str = "raise"
    sample_rate: int = 0
    quality: int | None = None  # 1..100 (walloc_io.quality); None: the design point
    max_abs_error: float | None = None  # float arrays: the guaranteed bound on every value

    def __post_init__(self) -> None:
        if (self.preset is None) == (self.path is None):
            raise InputError("walloc codec needs exactly one of preset= or path=")
        if self.nan not in NAN_POLICIES:
            raise InputError(f"nan must be one of {NAN_POLICIES}, got {self.nan!r}")
        if not isinstance(self.channel_last, bool):
            object.__setattr__(self, "channel_last", bool(self.channel_last))
        object.__setattr__(self, "sample_rate", check_sample_rate(self.sample_rate))
        object.__setattr__(self, "quality", check_quality(self.quality))
        if self.max_abs_error is not None:
            from ..entropy.residual import check_bound

            object.__setattr__(self, "max_abs_error", check_bound(self.max_abs_error, "float32"))
        if self.path is not None:
            object.__setattr__(self, "path", str(self.path))

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(cls.__dataclass_fields__)

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ChunkCodecOptions:
        """From stored metadata; keys of walloc-io 0.1 (``device``) are ignored."""
        config = {k: v for k, v in config.items() if k not in LEGACY_KEYS and k != "id"}
        unknown = set(config) - set(cls.keys())
        if unknown:
            raise InputError(f"unknown walloc codec options: {sorted(unknown)} "
                             f"(known: {', '.join(cls.keys())})")
        return cls(**config)

    def to_config(self) -> dict[str, Any]:
        """JSON for the store: the fingerprint filled in, no runtime state."""
        config = {k: v for k, v in asdict(self).items() if v is not None}
        config["fingerprint"] = self.resolved_fingerprint()
        return config

    def resolved_fingerprint(self) -> str | None:
        """The recorded fingerprint, or the one the named preset/directory has now."""
        from ..presets import resolve

        return self.fingerprint or manifest_fingerprint(resolve(self.name))

    @property
    def name(self) -> str:
        """The preset name or directory the options give (one of them is always set)."""
        return str(self.preset if self.preset is not None else self.path)

    def codec_dir(self) -> Path:
        """The directory of the model that wrote (or will write) the chunks: the named
        preset or path when its fingerprint matches, else the one found by fingerprint."""
        from ..presets import find_version, resolve

        if self.fingerprint is None:
            return resolve(self.name)
        named: Path | None
        try:
            named = resolve(self.name)
        except PresetError:
            named = None
        if named is not None and (kept := find_version(named, self.fingerprint)) is not None:
            return kept  # the named codec, or an earlier version of it kept when retrained
        found = find_codec_dir(self.fingerprint)
        if found is None:
            raise PresetError(
                f"chunks were written by model {self.fingerprint[:12]} "
                f"({self.preset or self.path}), which no installed preset is and no directory in "
                "WALLOC_CODEC_PATH holds: point WALLOC_CODEC_PATH at that codec directory")
        return found

    def config(self):
        """The codec's :class:`~walloc_io.config.CodecConfig` (no torch)."""
        from ..config import CodecConfig

        return CodecConfig.from_json((self.codec_dir() / "config.json").read_text())

    def load(self, device: str | None = None):
        """The :class:`~walloc_io.Codec` (per-process cache); ``device`` None:
        ``WALLOC_DEVICE`` or the CPU."""
        from ..codec import load_codec
        from ..presets import PRESET_DIR

        directory = self.codec_dir()
        name = self.preset if self.preset and directory == PRESET_DIR / self.preset else str(directory)
        return load_codec(name, device=device or os.environ.get("WALLOC_DEVICE", "cpu"))
