"""walloc-io: WaLLoC (Wavelet Learned Lossy Compression) for data pipelines.

>>> import walloc_io
>>> "rgb-16x" in walloc_io.list_presets()
True

Heavy pieces load lazily: ``read_header`` and ``list_presets`` never import torch, and
nothing here imports zarr, webdataset or dask.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .bitstream import Header, read_header
from .errors import BitstreamError, InputError, ModelMismatchError, PresetError, WallocError
from .presets import list_presets, load_config

if TYPE_CHECKING:
    from .codec import Codec, load_codec
    from .config import CodecConfig
    from .latents import Deferred, Latents
    from .pipelines.batch import BatchDecoder, collate
    from .pipelines.datasets import ZarrDataset
    from .pipelines.wds import wds_decoder, wds_encoder
    from .pipelines.zarr_dask import decode_array, open_latents

__version__ = "0.12.0"  # the one source of the version (pyproject reads it)
__all__ = [
    "BatchDecoder", "BitstreamError", "Codec", "CodecConfig", "Deferred", "Header", "InputError", "Latents",
    "ModelMismatchError", "PresetError", "WallocError", "ZarrDataset", "collate", "decode_array",
    "list_presets", "load_codec", "load_config", "open_latents", "read_header", "register",
    "wds_decoder", "wds_encoder",
]

_LAZY = {"Codec": "codec", "load_codec": "codec", "CodecConfig": "config",
         "open_latents": "pipelines.zarr_dask", "decode_array": "pipelines.zarr_dask",
         "BatchDecoder": "pipelines.batch", "Deferred": "latents", "Latents": "latents",
         "collate": "pipelines.batch", "ZarrDataset": "pipelines.datasets",
         "wds_decoder": "pipelines.wds", "wds_encoder": "pipelines.wds"}


def register() -> None:
    """Register the ``walloc`` codec with numcodecs and zarr by hand (idempotent).

    Both registries find it through entry points once walloc-io is installed; this is the
    fallback for environments where entry points are not scanned (vendored copies, frozen
    applications). Imports numcodecs and zarr, whichever is installed.

    Examples
    --------
    >>> import numcodecs, walloc_io
    >>> walloc_io.register(); walloc_io.register()  # twice is harmless
    >>> numcodecs.get_codec({"id": "walloc", "preset": "gray-16x"}).preset
    'gray-16x'
    """
    try:
        import numcodecs

        from .codecs.numcodec import WallocCodec

        numcodecs.register_codec(WallocCodec)
    except ImportError:
        pass
    try:
        from zarr.registry import register_codec

        from .codecs.zarr3 import WallocZarrCodec

        register_codec("walloc", WallocZarrCodec)
        from .codecs.spectral_zarr import WallocSpectralZarrCodec

        register_codec("walloc_spectral", WallocSpectralZarrCodec)
    except ImportError:
        pass


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
