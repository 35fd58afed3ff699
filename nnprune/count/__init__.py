"""Cost accounting: parameters, non-zero parameters, MACs and FLOPs of a (pruned) model.

Conventions, stated once:

- Counts are **per image**: ``input_shape`` is ``(C, H, W)`` without a batch axis.
- ``macs``: multiply-accumulates of Conv2d ``OH·OW·F·C·kh·kw`` (taps on zero padding included,
  as PyTorch-side counters count) and Linear ``in·out`` only, **bias excluded**;
  ``flops = 2 · macs`` (one multiply and one add per MAC).
- ``density`` of a layer = nnz(weight) / |weight|, the bias excluded (for BatchNorm the weight
  is γ; None without a weight); ``effective_macs = macs × density`` (Blalock et al. 2020),
  the exact integer ``weight uses × nnz(weight)``.
- ``nonzero_params`` counts the entries ``!= 0`` of the parameters' data, whatever made them
  zero. A Conv2d/Linear weight that reads a dead channel (0 for every input, ``rules.py``)
  counts as zero there and in ``effective_macs``: so a unit-masked model and its shrunk twin
  (``prune.shrink``) report the same effective figures.
- ``compression_ratio = params / nonzero_params``; ``speedup = macs / effective_macs``, that
  of a sparse kernel skipping every zero weight; both follow ``nnprune.ratios``.
"""
from nnprune.count.model import count, count_arrays, leaf_layers
from nnprune.count.report import ArrayCostReport, CostReport, LayerCost, TensorCost

__all__ = ["count", "count_arrays", "leaf_layers", "CostReport", "LayerCost", "ArrayCostReport",
           "TensorCost"]
