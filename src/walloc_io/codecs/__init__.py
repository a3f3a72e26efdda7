"""Storage faces: numcodecs and Zarr v3 codecs (see issue: storage)."""
