"""Generic training of neural recommenders with PyTorch Lightning."""

from mmbench.training.trainer import FitReport, NeuralTrainer

__all__ = ["FitReport", "NeuralTrainer"]
