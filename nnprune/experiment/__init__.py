"""Experiments: pruning workflows, sweeps, results files, reports and figures.

- ``workflows``: one-shot, iterative, gradual, at-initialisation and lottery-ticket
  (``tickets``) pruning of a model on a dataset, each taking a ``PruneSpec`` and a
  ``TrainSpec`` (or their keywords) and returning one result record.
- ``pruning``: a run by schedule name, as ``nnprune prune`` runs it (the options checked
  against the schedule, dead units masked whole and cut out).
- ``sweep``: criteria × sparsities × scopes from one trained model; ``outputs``: what it
  writes.
- ``report``: ``results.json`` and the markdown report; ``plots``: the figures.
- ``runs``: what every run is made of (copy, train, evaluate, record).
- ``demo``: the end-to-end digits demo behind ``nnprune demo``.
- ``demo_structured``: the demo's filter pruning cut into a smaller model, timed.

Import the module you need (``from nnprune.experiment import workflows``): the figures pull
in matplotlib, which the workflows alone do not need.
"""
