"""Entropy stage: integer prediction, frozen tables, ANS coding (constriction)."""

from .coder import decode, encode
from .tables import EntropyTables, fit_tables, quantise_counts

__all__ = ["EntropyTables", "decode", "encode", "fit_tables", "quantise_counts"]
