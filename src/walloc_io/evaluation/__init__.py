"""Rate–distortion evaluation (``walloc eval``): :mod:`.rd` measures, :mod:`.report` reports."""

from .rd import evaluate_audio, evaluate_image, items
from .report import at_rate, mean_curves, plot, report, write_csv

__all__ = ["at_rate", "evaluate_audio", "evaluate_image", "items", "mean_curves", "plot", "report",
           "write_csv"]
