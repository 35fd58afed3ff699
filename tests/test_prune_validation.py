"""Validated once: a chain from ``prune_model`` down to the masks parses the granularity and
checks the sparsity exactly once, at the door (``PruneSpec``), whatever the path; and the
model boundary is the ``PrunableModel`` protocol, which nnprune's models keep."""
import numpy as np
import pytest

from nnprune import models, nn
from nnprune.prune.apply import prune_model
from nnprune.prune.protocol import LayeredModel, PrunableModel, PrunableParameter
from nnprune.prune.spec import PruneSpec

pytestmark = pytest.mark.masks


def cnn():
    """conv (8, 4, 3, 3) -> conv (8, 8, 3, 3) -> linear (4, 8·2·2): every granularity fits."""
    return nn.Sequential(nn.Conv2d(4, 8, 3, rng=0), nn.ReLU(), nn.Conv2d(8, 8, 3, rng=1),
                         nn.ReLU(), nn.Flatten(), nn.Linear(32, 4, rng=2))


X = np.random.default_rng(0).normal(size=(16, 4, 6, 6)).astype(np.float32)
Y = np.arange(16) % 4


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("criterion, sparsity, granularity, options", [
    ("magnitude", 0.5, "weight", {}),
    ("magnitude", 0.5, "kernel", {"exclude": ["5.weight"]}),
    ("magnitude", 0.5, "filter", {}),
    ("taylor", 0.5, "channel", {"grads": "ones"}),
    ("random", None, "2:4", {}),
    ("magnitude", 0.5, "2:4", {"rounding": "half_even"}),
    ("l1_norm", 0.5, "filter", {}),
    ("magnitude", 0.5, "neuron", {"layer_norm": "max"}),
    ("obd", 0.5, "filter", {"hessian_diag": "ones"}),
    ("obs", 0.5, "weight", {"calibration": (X, Y)}),
    ("obs", None, "2:4", {"calibration": (X, Y)}),
])
def test_prune_model_parses_the_granularity_and_checks_the_sparsity_once(
        counts, scope, criterion, sparsity, granularity, options):
    model = cnn()
    ones = {name: np.ones(p.shape) for name, p in model.named_parameters()}
    options = {k: ones if v == "ones" else v for k, v in options.items()}
    report = prune_model(model, criterion, sparsity, scope, granularity, **options)
    assert report.sparsity > 0
    # N:M given None has no sparsity to check: its 1 - N/M is taken, not checked
    assert counts == {"parse": 1, "sparsity": 0 if sparsity is None else 1}


@pytest.mark.parametrize("scope", ["layer", "global"])
@pytest.mark.parametrize("criterion", ["l1_norm", "fpgm", "magnitude"])
def test_a_residual_model_is_pruned_by_channel_group_with_one_parse_and_one_check(
        counts, scope, criterion):
    """Filter granularity on a ResNet ranks channel groups: the same one parse, one check."""
    report = prune_model(models.resnet20(width=0.25), criterion, 0.5, scope, "filter")
    assert report.sparsity > 0
    assert counts == {"parse": 1, "sparsity": 1}


def test_a_spec_is_checked_where_it_is_made_and_trusted_after(counts):
    spec = PruneSpec("magnitude", 0.5, "global", "filter")
    assert counts == {"parse": 1, "sparsity": 1}
    prune_model(cnn(), spec)
    prune_model(cnn(), spec)
    assert counts == {"parse": 1, "sparsity": 1}


def test_a_spec_and_its_fields_are_not_mixed():
    """prune_model(model, spec, 0.9) would leave 0.9 unread: it is refused instead."""
    spec = PruneSpec("magnitude", 0.5)
    with pytest.raises(TypeError, match="a PruneSpec or the fields of one, not both"):
        prune_model(cnn(), spec, 0.9)
    with pytest.raises(TypeError, match="not both"):
        prune_model(cnn(), spec, granularity="filter")
    assert prune_model(cnn(), spec, grads=None).sparsity == 0.5


def test_the_public_array_functions_still_check_their_own_input(counts):
    """They are doors too: a bad sparsity or granularity given to them directly is refused."""
    from nnprune.prune import global_topk_masks, granularity_mask, topk_mask

    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\]"):
        topk_mask(np.ones(4), 1.5)
    with pytest.raises(ValueError, match="granularity must be one of"):
        granularity_mask(np.ones((2, 4)), 0.5, "rows")
    with pytest.raises(ValueError, match="fixes sparsity"):
        global_topk_masks({"a": np.ones((2, 4))}, 0.3, granularity="2:4")


class Foreign:
    """Has parameters, but not through named_parameters()."""

    def parameters(self):
        return iter([np.zeros((2, 2))])


def test_nnprune_models_keep_the_pruning_protocol():
    for model in (cnn(), models.lenet_300_100(in_channels=1, input_size=8, width=0.1)):
        assert isinstance(model, PrunableModel) and isinstance(model, LayeredModel)
        for _, p in model.named_parameters():
            assert isinstance(p, PrunableParameter)


def test_a_foreign_object_does_not_keep_it():
    assert not isinstance(Foreign(), PrunableModel)
    assert not isinstance(np.zeros((2, 2)), PrunableParameter)
    assert not isinstance(Foreign(), LayeredModel)
    with pytest.raises(TypeError, match="named_parameters"):
        prune_model(Foreign(), "magnitude", 0.5)
