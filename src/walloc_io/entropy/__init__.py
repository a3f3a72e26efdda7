"""Entropy stage: integer prediction, frozen tables, the native rANS coder (format 2) and
the constriction coder of format 1 (old streams)."""

from . import format1
from .native import LatentCoder
from .tables import (
    EntropyTables,
    fit_model_tables,
    fit_tables,
    ladder_id,
    ladder_ids,
    load_ladder,
    quantise_counts,
    save_ladder,
)

__all__ = ["EntropyTables", "LatentCoder", "fit_model_tables",
           "fit_tables", "format1", "ladder_id", "ladder_ids",
           "load_ladder",
           "quantise_counts", "save_ladder"]
