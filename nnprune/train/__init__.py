"""Training and evaluation of a classifier: ``fit``, ``evaluate``, ``gradients``, ``predict``,
and ``TrainSpec``, the settings of one training run checked once.

The loss is the mean cross-entropy of the logits, L = −(1/N) Σᵢ log softmax(zᵢ)[yᵢ], plus an
optional regularizer R(model) (an L1/L2 penalty for fine-tuning). Data is an ``(x, y)`` pair
of arrays — x ``(N, ...)`` float, y ``(N,)`` integer class labels — or a
``nnprune.data.DataLoader``; a pair is shuffled each epoch by a generator seeded with
``seed``, so the same seed gives bit-identical weights.
"""
from nnprune.divergence import DivergenceError
from nnprune.train.loop import History, fit
from nnprune.train.measure import evaluate, gradients, predict
from nnprune.train.spec import OPTIMIZERS, TrainSpec

__all__ = ["fit", "evaluate", "gradients", "predict", "History", "DivergenceError",
           "TrainSpec", "OPTIMIZERS"]
