"""Experiments: pruning workflows, sweeps, results files, reports and figures.

- ``workflows``: one-shot, iterative, gradual, at-initialisation and lottery-ticket pruning of
  a model on a dataset, each returning one result record.
- ``sweep``: criteria × sparsities × scopes from one trained model.
- ``report``: ``results.json`` and the markdown report; ``plots``: the figures.
- ``runs``: what every run is made of (copy, train, evaluate, record).
- ``demo``: the end-to-end digits demo behind ``nnprune demo``.
- ``demo_structured``: the demo's filter pruning cut into a smaller model, timed.

Import the module you need (``from nnprune.experiment import workflows``): the figures pull
in matplotlib, which the workflows alone do not need.
"""
