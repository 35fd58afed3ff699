"""Neural-network modules with PyTorch's names and shapes."""
from nnprune.nn.module import Module, Parameter
from nnprune.nn.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Dropout, Flatten,
                               Linear, MaxPool2d, ReLU, Tanh)
from nnprune.nn.container import Residual, Sequential, from_config
from nnprune.nn import init

__all__ = ["Parameter", "Module", "Sequential", "from_config", "init", "Linear", "Conv2d",
           "MaxPool2d", "AvgPool2d", "BatchNorm1d", "BatchNorm2d", "ReLU", "Tanh", "Dropout",
           "Flatten", "Residual"]
