"""What loaders hand on between entropy decoding and the decoder network. Imports no torch.

A :class:`Latents` item (``Deferred`` is its old name) is one entropy-decoded stream: the
integer latents and the stream's header, everything the decoder network needs later, on
another device, batched with other items (:func:`walloc_io.collate`,
:class:`walloc_io.BatchDecoder`). Defined here, below the codec, so the WebDataset handler
and the Zarr dataset produce them without importing torch's collate machinery or Dask.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .bitstream import Header

TARGETS = ("signal", "latents", "deferred")  # what loaders hand on: see wds_decoder, ZarrDataset


class Latents(NamedTuple):
    """One entropy-decoded stream whose decoder network has not run yet.

    Examples
    --------
    >>> import numpy as np, walloc_io
    >>> codec = walloc_io.load_codec("gray-16x", device="cpu")
    >>> codes, header = codec.entropy_decode(codec.encode(np.zeros((1, 32, 32), np.uint8)))
    >>> codes.shape, codes.dtype.kind, header.array_shape
    ((4, 4, 4), 'i', (1, 32, 32))
    """

    codes: np.ndarray  # integer latents (L, *latent_shape)
    header: Header


Deferred = Latents  # the name of walloc-io 0.1
