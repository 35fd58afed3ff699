"""Optimizers and learning-rate schedules; all of them keep pruned weights at zero."""
from nnprune.optim.optimizers import SGD, Adam, AdamW, Optimizer
from nnprune.optim.lr_scheduler import CosineAnnealingLR, LRSchedule, LRScheduler, StepLR

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "LRScheduler", "StepLR", "CosineAnnealingLR",
           "LRSchedule"]
