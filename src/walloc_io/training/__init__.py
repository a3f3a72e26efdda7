"""Training: crop sampling, PCA initialisation, the resumable loop, table freezing."""

from .data import CropSampler, load_images, load_signals, split_validation
from .loop import Trainer, TrainSettings

__all__ = ["CropSampler", "TrainSettings", "Trainer", "load_images", "load_signals",
           "split_validation"]
