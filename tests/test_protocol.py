"""Every training protocol expressible: constant / step / cosine rates and PyTorch's coupled
weight decay, equal to PyTorch's closed forms and update rules, in ``fit_model``, the
workflows and the command line; iterative rounds linear or geometric from the CLI."""
import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from nnprune import models, nn, optim
from nnprune.cli import main
from nnprune.experiment import workflows
from nnprune.experiment.runs import clone_model, fit_model
from nnprune.optim import CosineAnnealingLR, LRSchedule
from nnprune.prune.apply import prune_model
from nnprune.train import fit

pytestmark = pytest.mark.optim

def mlp(seed=0):
    return models.lenet_300_100(in_channels=1, input_size=8, width=0.1, seed=seed)


@settings(max_examples=30, deadline=None)
@given(t_max=st.integers(1, 12), base=st.floats(1e-3, 1.0), frac=st.floats(0.0, 1.0),
       epochs=st.integers(0, 40))
def test_cosine_annealing_is_pytorchs_closed_form_at_every_epoch(t_max, base, frac, epochs):
    """lr_e = η_min + (lr_0 − η_min)(1 + cos(π e / T_max)) / 2 for every e, before and after
    T_max (PyTorch's ``_get_closed_form_lr``), also when stepped epoch by epoch."""
    eta_min = frac * base
    sched = CosineAnnealingLR(optim.SGD([nn.Parameter(np.ones(1))], base), t_max, eta_min)
    stepped = [sched.step() for _ in range(epochs)]
    for e, lr in enumerate(stepped, 1):
        expected = eta_min + (base - eta_min) * (1 + math.cos(math.pi * e / t_max)) / 2
        assert lr == pytest.approx(expected, rel=1e-12, abs=1e-15)


@pytest.mark.parametrize("spec, closed_form", [
    ("constant", lambda e, E: 0.1),
    ("step:2:0.5", lambda e, E: 0.1 * 0.5 ** (e // 2)),
    ("step:3", lambda e, E: 0.1 * 0.1 ** (e // 3)),
    ("cosine", lambda e, E: 0.1 * (1 + math.cos(math.pi * e / E)) / 2),
])
def test_fit_model_runs_each_epoch_at_the_closed_form_rate(spec, closed_form, digits):
    """The rate of epoch e (0-based) of an E-epoch run is the schedule's closed form."""
    history = fit_model(mlp(), digits, epochs=5, lr=0.1, lr_schedule=spec)
    rates = [entry["lr"] for entry in history.epochs]
    assert rates == pytest.approx([closed_form(e, 5) for e in range(5)], rel=1e-12)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**16), lr=st.floats(1e-3, 0.5), wd=st.floats(0.0, 0.1),
       momentum=st.sampled_from([0.0, 0.5, 0.9]))
def test_coupled_weight_decay_is_pytorchs_sgd_rule(seed, lr, wd, momentum):
    """torch.optim.SGD: d = g + λ·w; b₁ = d, b_t = μ·b_{t−1} + d; w ← w − lr·b_t (every
    parameter, biases included), three steps from drawn weights and gradients."""
    rng = np.random.default_rng(seed)
    w, b = rng.standard_normal((3, 4)), rng.standard_normal(3)
    layer = nn.Linear(4, 3, dtype=np.float64)
    layer.weight.data[...], layer.bias.data[...] = w, b
    opt = optim.SGD(layer.parameters(), lr=lr, momentum=momentum, weight_decay=wd)
    expected, buf = [w.copy(), b.copy()], [None, None]
    for _ in range(3):
        grads = [rng.standard_normal(w.shape), rng.standard_normal(b.shape)]
        layer.weight.grad, layer.bias.grad = grads[0].copy(), grads[1].copy()
        opt.step()
        for i, g in enumerate(grads):
            d = g + wd * expected[i]
            buf[i] = d if buf[i] is None or momentum == 0 else momentum * buf[i] + d
            expected[i] = expected[i] - lr * buf[i]
    np.testing.assert_allclose(layer.weight.data, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.bias.data, expected[1], rtol=1e-12, atol=1e-12)


def test_a_workflows_weight_decay_is_the_optimizers(digits):
    """oneshot(weight_decay=λ, lr_schedule=s) = prune, then fit with SGD(momentum 0.9,
    weight_decay=λ) under s: the same bits; the record says which."""
    model = mlp()
    fit_model(model, digits, epochs=2, lr=0.05)
    by_workflow, by_hand = clone_model(model), clone_model(model)
    record = workflows.oneshot(by_workflow, digits, sparsity=0.8, scope="global",
                               finetune_epochs=2, lr=0.05, weight_decay=1e-3,
                               lr_schedule="step:1:0.5")
    prune_model(by_hand, "magnitude", 0.8, "global")
    opt = optim.SGD(by_hand.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)
    fit(by_hand, (digits.x_train, digits.y_train), opt, 2, seed=0, quiet=True,
        scheduler=optim.StepLR(opt, 1, 0.5))
    for (name, a), (_, b) in zip(by_workflow.named_parameters(), by_hand.named_parameters()):
        np.testing.assert_array_equal(a.data, b.data, err_msg=name)
    assert record["weight_decay"] == 1e-3 and record["lr_schedule"] == "step:1:0.5"


@pytest.mark.parametrize("workflow, kwargs", [
    (workflows.iterative, dict(rounds=2)), (workflows.gradual, {}),
    (workflows.at_init, dict(criterion="random")), (workflows.lottery, dict(rounds=1)),
])
def test_every_workflow_takes_weight_decay_and_a_schedule(workflow, kwargs, digits):
    record = workflow(mlp(), digits, sparsity=0.5, finetune_epochs=1, weight_decay=5e-4,
                      lr_schedule="constant", **kwargs)
    assert record["weight_decay"] == 5e-4 and record["lr_schedule"] == "constant"


@pytest.mark.parametrize("spec, error, match", [
    ("linear", ValueError, "lr_schedule must be one of"),
    ("step", ValueError, "needs step_size"),
    ("step:0", ValueError, "needs step_size"),
    ("step:x", ValueError, "STEP_SIZE"),
    ("step:2:2.0", ValueError, "gamma"),
    ("cosine:3", ValueError, "only 'step'"),
    (3, TypeError, "lr_schedule must be a string"),
])
def test_bad_schedules_are_refused(spec, error, match):
    with pytest.raises(error, match=match):
        LRSchedule.parse(spec)


def test_bad_weight_decay_is_refused_before_training(digits):
    with pytest.raises(ValueError, match="weight_decay must be a finite number >= 0"):
        workflows.oneshot(mlp(), digits, sparsity=0.5, weight_decay=-1.0)


def test_the_cli_carries_weight_decay_schedule_and_linear_rounds(tmp_path, capsys):
    """train --lr-schedule, prune --weight-decay --lr-schedule --rounds-kind linear: the
    saved metadata and the JSON record say so, and the rounds rise by equal steps."""
    dense = tmp_path / "dense.npz"
    assert main(["train", "--model", "lenet_300_100", "--width", "0.1", "--epochs", "2",
                 "--lr-schedule", "step:1:0.5", "--weight-decay", "1e-4", "--quiet",
                 "--out", str(dense)]) == 0
    assert main(["prune", str(dense), "--schedule", "iterative", "--rounds", "3",
                 "--rounds-kind", "linear", "--sparsity", "0.6", "--finetune-epochs", "1",
                 "--weight-decay", "1e-4", "--lr-schedule", "constant", "--quiet",
                 "--out", str(tmp_path / "p.npz"), "--json", str(tmp_path / "p.json")]) == 0
    record = json.loads((tmp_path / "p.json").read_text())
    assert [r["target"] for r in record["rounds"]] == pytest.approx([0.2, 0.4, 0.6])
    assert record["kind"] == "linear" and record["weight_decay"] == 1e-4
    assert record["lr_schedule"] == "constant"
    from nnprune import io
    _, metadata = io.load(dense)
    assert metadata["train"]["lr_schedule"] == "step:1:0.5"
    assert [e["lr"] for e in metadata["history"]["epochs"]] == pytest.approx([0.02, 0.01])
    capsys.readouterr()
    assert main(["train", "--model", "lenet_300_100", "--lr-schedule", "step:0",
                 "--out", str(tmp_path / "x.npz")]) == 2
    assert "--lr-schedule" in capsys.readouterr().err


def test_lenet_300_100_names_are_the_pytorch_sequentials():
    """The keys and shapes of torch's nn.Sequential(Flatten, Linear(784, 300), ReLU,
    Linear(300, 100), ReLU, Linear(100, 10)).state_dict(), listed here as PyTorch 2 prints
    them, are the model's."""
    torch_keys = {"1.weight": (300, 784), "1.bias": (300,), "3.weight": (100, 300),
                  "3.bias": (100,), "5.weight": (10, 100), "5.bias": (10,)}
    shapes = {n: p.shape for n, p in models.lenet_300_100().named_parameters()}
    assert shapes == torch_keys
