"""Loader and Dask faces (see issues: storage, streaming)."""
