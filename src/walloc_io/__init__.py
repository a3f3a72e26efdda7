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
from .presets import list_presets

if TYPE_CHECKING:
    from .codec import Codec, load_codec
    from .config import CodecConfig
    from .pipelines.batch import BatchDecoder, Deferred, collate
    from .pipelines.datasets import ZarrDataset
    from .pipelines.wds import wds_decoder, wds_encoder
    from .pipelines.zarr_dask import decode_array, open_latents

__version__ = "0.1.0"
__all__ = [
    "BatchDecoder", "BitstreamError", "Codec", "CodecConfig", "Deferred", "Header", "InputError",
    "ModelMismatchError", "PresetError", "WallocError", "ZarrDataset", "collate", "decode_array",
    "list_presets", "load_codec", "open_latents", "read_header", "wds_decoder", "wds_encoder",
]

_LAZY = {"Codec": "codec", "load_codec": "codec", "CodecConfig": "config",
         "open_latents": "pipelines.zarr_dask", "decode_array": "pipelines.zarr_dask",
         "BatchDecoder": "pipelines.batch", "Deferred": "pipelines.batch",
         "collate": "pipelines.batch", "ZarrDataset": "pipelines.datasets",
         "wds_decoder": "pipelines.wds", "wds_encoder": "pipelines.wds"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
