"""Experiments: pruning workflows, sweeps, results files, reports and figures.

Import the module you need (``from nnprune.experiment import workflows``): the figures pull
in matplotlib, which the workflows alone do not need.
"""
