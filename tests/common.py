"""Helpers shared by the tests (numcodecs-style ``check_*``): golden fixtures and codec faces."""

from __future__ import annotations

import json
import os

import walloc_io

REGENERATE = os.environ.get("WALLOC_REGENERATE_GOLDEN") == "1"


# The model the golden fixtures were written with: rgb-16x of walloc-io 0.2 (kept in
# presets/rgb-16x/versions/ since the preset was retrained): found by fingerprint, as any
# reader of old data finds it.
GOLDEN_FINGERPRINT = "b82bc5761b068cb90ebcfb9feb91a9e1"


def golden_codec(regenerate) -> walloc_io.Codec:
    """The model golden fixtures are written with; ``regenerate(codec)`` rewrites them, only
    when WALLOC_REGENERATE_GOLDEN=1."""
    codec = walloc_io.load_codec("rgb-16x", device="cpu", fingerprint=GOLDEN_FINGERPRINT)
    if REGENERATE:
        regenerate(codec)
    return codec


def check_config(codec_cls, config: dict) -> None:
    """A codec's config round-trips through JSON (numcodecs' ``check_config``)."""
    codec = codec_cls.from_config(dict(config))
    again = codec_cls.from_config(json.loads(json.dumps(codec.get_config())))
    assert again.get_config() == codec.get_config()
