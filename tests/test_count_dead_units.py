"""Effective counts that follow dead units: after structured masking, a weight that reads a
dead channel counts as zero, so the masked model and the shrunk one report the same
``nonzero_params`` and ``effective_macs``."""
import numpy as np
import pytest
from hypothesis import given, settings

from nnprune import models, nn
from nnprune.count import count
from nnprune.count.rules import alive_after, input_alive
from nnprune.prune import prune_model
from nnprune.prune.surgery import shrink
from nnprune.prune.units import mask_units
from strategies import dead_unit_nets

pytestmark = pytest.mark.accounting


@settings(max_examples=40, deadline=None)
@given(dead_unit_nets(output_layer=False, whole=True))
def test_masked_and_shrunk_models_report_the_same_effective_figures(case):
    """Property: count(masked) and count(shrink(masked)) agree on nonzero_params and
    effective_macs (the dense MACs and params differ: shrink removed the dead units)."""
    model, input_shape = case
    small, _ = shrink(model, input_shape)
    masked, shrunk = count(model, input_shape), count(small, input_shape)
    assert masked.effective_macs == shrunk.effective_macs
    assert masked.nonzero_params == shrunk.nonzero_params
    assert shrunk.macs <= masked.macs and shrunk.params <= masked.params


@pytest.mark.parametrize("name, granularity, excluded", [
    ("lenet5", "filter", ["7.weight"]), ("simple_cnn", "filter", ["9.weight"]),
    ("lenet_300_100", "neuron", ["5.weight"]), ("simple_cnn", "channel", ["0.weight"]),
])
def test_filter_pruned_benchmarks_count_like_their_shrunk_twins(name, granularity, excluded):
    """On the benchmark models pruned at 50 % by whole units: the same effective figures;
    after filter/neuron pruning fewer than counting every non-zero value would give (the
    consumers still hold weights for the dead channels; channel pruning zeroed those)."""
    model = models.build_model(name, in_channels=1, input_size=8, seed=0)
    prune_model(model, "magnitude", 0.5, granularity=granularity, exclude=excluded)
    mask_units(model)
    small, _ = shrink(model, (1, 8, 8))
    masked, shrunk = count(model, (1, 8, 8)), count(small, (1, 8, 8))
    assert (masked.effective_macs, masked.nonzero_params) == \
        (shrunk.effective_macs, shrunk.nonzero_params)
    values = sum(int(np.count_nonzero(p.data)) for p in model.parameters())
    assert masked.nonzero_params < values if granularity != "channel" else \
        masked.nonzero_params == values


def test_dense_models_count_every_weight():
    """Without dead units nothing changes: effective MACs = MACs, nonzero = params."""
    report = count(models.lenet5(seed=0), (1, 28, 28))
    assert report.effective_macs == report.macs == 2_293_000
    assert report.nonzero_params == report.params == 431_080


def test_alive_rules_of_each_layer_kind():
    """A conv unit lives on a non-zero weight from a live input or a non-zero bias; BatchNorm
    kills a channel with γ = β = 0 and keeps a dead one dead only when β = 0 and μ or γ is 0;
    Flatten repeats a channel over its H·W features."""
    conv = nn.Conv2d(2, 3, 1, dtype=np.float64)
    conv.weight.data[...] = [[[[1.0]], [[0.0]]], [[[0.0]], [[2.0]]], [[[0.0]], [[0.0]]]]
    conv.bias.data[...] = [0.0, 0.0, 0.5]
    assert alive_after(conv, np.array([True, False]), (3, 4, 4)).tolist() == [True, False, True]
    bn = nn.BatchNorm2d(3, dtype=np.float64)
    bn.weight.data[...] = [0.0, 1.0, 1.0]
    bn.bias.data[...] = [0.0, 0.0, 0.3]
    bn.running_mean[...] = [0.0, 0.2, 0.0]
    assert alive_after(bn, np.array([True, False, False]), (3, 4, 4)).tolist() == \
        [False, True, True]
    flat = alive_after(nn.Flatten(), np.array([True, False]), (2 * 3 * 3,))
    assert flat.tolist() == [True] * 9 + [False] * 9
    assert input_alive((3, 8, 8)).all() and len(input_alive((3, 8, 8))) == 3
