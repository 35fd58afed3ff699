"""Cost accounting: parameters, non-zero parameters, MACs and FLOPs of a (pruned) model.

Conventions, stated once:

- Counts are **per image**: ``input_shape`` is ``(C, H, W)`` without a batch axis; a batch of
  N images costs N times the MACs (the parameters do not change).
- ``macs`` are the multiply-accumulates of Conv2d and Linear layers only, **bias excluded**:
  Conv2d ``OH·OW·F·C·kh·kw`` (every kernel tap at every output position, taps on zero padding
  included, as PyTorch-side counters count), Linear ``in_features·out_features``.
  BatchNorm, pooling, activations and dropout count 0 MACs by this convention.
- ``flops = 2 · macs`` (one multiply and one add per MAC). FLOPs are never stored under the name
  of MACs or the other way round.
- ``density`` of a layer = nnz(weight) / |weight|, the bias excluded (for BatchNorm the weight
  is γ; a layer without a weight has density None); ``effective_macs = macs ×
  density`` (Blalock et al. 2020, "What is the State of Neural Network Pruning?"), which is
  the exact integer ``weight uses × nnz(weight)`` (see ``rules.py``).
- ``nonzero_params`` counts entries ``!= 0`` in the parameters' data; a masked Parameter is
  zero where pruned, so pruned weights are not counted (nor is a bias still at its zero
  initialisation: the count is of the values, whatever made them zero).
- Dead units: a Conv2d/Linear weight that reads a channel which is 0 for every input (a
  filter or neuron pruned whole, with its bias; see ``alive.py``) counts as zero in
  ``nonzero_params``, ``density`` and ``effective_macs``: it multiplies zeros. So a
  unit-masked model and its shrunk twin (``prune.shrink``) report the same effective figures.
- ``compression_ratio = params / nonzero_params``; ``speedup = macs / effective_macs``, the
  theoretical speed-up of a sparse kernel that skips every zero weight. Every ratio follows
  ``nnprune.ratios``: 0 / 0 = 1 (nothing counted is dense), x / 0 = inf (null in JSON).
"""
from nnprune.count.model import count, count_arrays, leaf_layers
from nnprune.count.report import ArrayCostReport, CostReport, LayerCost, TensorCost

__all__ = ["count", "count_arrays", "leaf_layers", "CostReport", "LayerCost", "ArrayCostReport",
           "TensorCost"]
