"""Workflows end to end on the digits, and the fine-tuning helpers they use."""
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import nn, optim, train
from nnprune.experiment import workflows
from nnprune.experiment.report import RECORD_FIELDS, check_records
from nnprune.experiment.sweep import clone_model, fit_model
from nnprune.models import lenet_300_100
from nnprune.prune.apply import model_masks, prunable_weights, prune_model, sparsity_of
from nnprune.prune.finetune import l1_regularizer, l2_regularizer, rescale_dropout
from nnprune.prune.masks import prune_count
from nnprune.train import gradients

pytestmark = pytest.mark.report

QUICK = dict(lr=0.05, batch_size=64, seed=0)


def fresh():
    """LeNet-300-100 at width 0.25 on 8×8 digits: 64-75-25-10."""
    return lenet_300_100(in_channels=1, input_size=8, width=0.25, seed=0)


@pytest.fixture(scope="module")
def trained(digits):
    model = fresh()
    fit_model(model, digits, epochs=4, lr=0.05)
    return model


def check_complete(record, model, schedule, target):
    """Every field is there, JSON-able, and agrees with the model as it was left."""
    check_records([record])
    json.dumps(record, allow_nan=False)
    assert record["schedule"] == schedule
    assert record["sparsity"] == pytest.approx(target)
    assert record["sparsity_reached"] == pytest.approx(sparsity_of(model, record["exclude"]))
    for field in ("accuracy_dense", "accuracy_before_finetune", "accuracy_after_finetune"):
        assert 0.0 <= record[field] <= 1.0
    weights = prunable_weights(model)
    assert record["nonzero_params"] < record["params"]
    assert record["effective_macs"] == sum(int(np.count_nonzero(w)) for w in weights.values())
    assert record["macs"] == sum(w.size for w in weights.values())  # an MLP: one MAC a weight
    assert set(model_masks(model)) == set(weights) - set(record["exclude"])


def test_oneshot_prunes_in_place_and_fine_tuning_recovers(digits, trained):
    """Magnitude to 90 % per layer: exact per-layer counts; fine-tuning regains accuracy."""
    model = clone_model(trained)
    r = workflows.oneshot(model, digits, criterion="magnitude", sparsity=0.9, finetune_epochs=2,
                          model_name="mlp", **QUICK)
    check_complete(r, model, "oneshot", 0.9)
    assert r["model"] == "mlp" and r["dataset"] == "digits" and r["seed"] == 0
    for name, w in prunable_weights(model).items():
        assert int((w == 0).sum()) == prune_count(w.size, 0.9)
    assert r["accuracy_dense"] > 0.9
    assert r["accuracy_after_finetune"] > r["accuracy_before_finetune"]
    assert r["accuracy_after_finetune"] > 0.75


def test_oneshot_taylor_global_keeps_the_excluded_layer_dense(digits, trained):
    model = clone_model(trained)
    r = workflows.oneshot(model, digits, criterion="taylor", sparsity=0.8, scope="global",
                          exclude=["5.weight"], finetune_epochs=1, **QUICK)
    check_complete(r, model, "oneshot", 0.8)
    assert r["layer_sparsity"]["5.weight"] == 0.0
    assert r["sparsity_reached"] == pytest.approx(0.8, abs=1e-3)
    assert r["accuracy_after_finetune"] > 0.8


def test_oneshot_without_fine_tuning_has_no_after_accuracy(digits, trained):
    model = clone_model(trained)
    r = workflows.oneshot(model, digits, sparsity=0.5, finetune_epochs=0, **QUICK)
    assert r["accuracy_after_finetune"] is None and r["finetune_epochs"] == 0
    check_records([r])


def test_iterative_rises_to_the_final_target(digits, trained):
    """Han et al.: the rounds' targets rise geometrically to exactly the final sparsity."""
    model = clone_model(trained)
    r = workflows.iterative(model, digits, sparsity=0.9, rounds=3, finetune_epochs=1, **QUICK)
    check_complete(r, model, "iterative", 0.9)
    targets = [row["target"] for row in r["rounds"]]
    assert targets == sorted(targets) and targets[-1] == 0.9 and len(targets) == 3
    assert r["accuracy_after_finetune"] == r["rounds"][-1]["accuracy_finetuned"]
    assert r["accuracy_after_finetune"] > 0.6


def test_iterative_rescales_dropout(digits):
    """The dropout after the first layer ends at D_o·√(density of that layer) (Han et al.)."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=0), nn.ReLU(), nn.Dropout(0.5, rng=0),
                          nn.Linear(32, 10, rng=1))
    r = workflows.iterative(model, digits, sparsity=0.75, rounds=2, finetune_epochs=1, **QUICK)
    density = 1 - r["layer_sparsity"]["1.weight"]
    assert model[3].p == pytest.approx(0.5 * np.sqrt(density))
    assert r["dropout"] == {"3": pytest.approx(model[3].p)}


def test_gradual_reaches_the_target_at_the_end_step(digits, trained):
    model = clone_model(trained)
    r = workflows.gradual(model, digits, sparsity=0.9, finetune_epochs=3, **QUICK)
    check_complete(r, model, "gradual", 0.9)
    last = r["history"][-1]
    assert last["step"] == r["end_step"] <= r["total_steps"] and last["target"] == 0.9
    steps = [h["step"] for h in r["history"]]
    assert steps == list(range(0, r["end_step"] + 1, r["frequency"]))  # t0 = 0 included
    targets = [h["target"] for h in r["history"]]
    assert targets == sorted(targets)
    assert r["accuracy_after_finetune"] > 0.6


def test_at_init_snip_trains_a_pruned_network(digits):
    model = fresh()
    r = workflows.at_init(model, digits, criterion="snip", sparsity=0.9, finetune_epochs=4, **QUICK)
    check_complete(r, model, "init", 0.9)
    assert r["accuracy_dense"] < 0.3  # untrained
    assert r["accuracy_after_finetune"] > 0.5


@pytest.mark.parametrize("rewind_step", [0, 10])
def test_lottery_rounds_and_rewinding(digits, rewind_step):
    model = fresh()
    r = workflows.lottery(model, digits, rate=0.5, rounds=2, finetune_epochs=2,
                          rewind_step=rewind_step, **QUICK)
    check_complete(r, model, "lottery", 0.75)
    assert [row["target"] for row in r["rounds"]] == [0.5, 0.75]
    assert r["accuracy_dense"] == r["rounds"][0]["accuracy_trained"]
    assert r["accuracy_after_finetune"] > 0.8
    for name, w in prunable_weights(model).items():
        assert int((w == 0).sum()) == prune_count(w.size, 0.75)


def test_lottery_from_a_final_sparsity(digits):
    r = workflows.lottery(fresh(), digits, sparsity=0.8, rounds=2, finetune_epochs=1, **QUICK)
    assert r["rate"] == pytest.approx(1 - 0.2 ** 0.5)
    assert r["sparsity"] == 0.8 and r["sparsity_reached"] == pytest.approx(0.8, abs=1e-3)


@pytest.mark.parametrize("run, kwargs, error, match", [
    (workflows.oneshot, dict(criterion="loudest"), ValueError, "unknown criterion"),
    (workflows.oneshot, dict(exclude=["9.weight"]), ValueError, "not a prunable weight"),
    (workflows.oneshot, dict(sparsity=1.2), ValueError, "sparsity"),
    (workflows.oneshot, dict(lr=0.0), ValueError, "lr"),
    (workflows.oneshot, dict(optimizer="rmsprop"), ValueError, "optimizer"),
    (workflows.oneshot, dict(scope="all"), ValueError, "scope"),
    (workflows.oneshot, dict(finetune_epochs=-1), ValueError, "finetune_epochs"),
    (workflows.oneshot, dict(regularizer="l2"), TypeError, "regularizer"),
    (workflows.lottery, dict(regularizer=1e-4), TypeError, "regularizer"),
    (workflows.iterative, dict(granularity="2:4"), ValueError, "use oneshot"),
    (workflows.iterative, dict(rounds=0), ValueError, "rounds"),
    (workflows.gradual, dict(finetune_epochs=0), ValueError, "finetune_epochs"),
    (workflows.gradual, dict(finetune_epochs=1, end_step=500, frequency=5), ValueError,
     "after the last"),
    (workflows.gradual, dict(end_step=7, frequency=5), ValueError, "multiple of frequency"),
    (workflows.at_init, dict(criterion="taylor"), ValueError, "at_init prunes with"),
    (workflows.lottery, dict(rate=0.2, sparsity=0.9), ValueError, "not both"),
    (workflows.lottery, dict(granularity="filter"), ValueError, "granularity"),
    (workflows.lottery, dict(rewind_step=10**6), ValueError, "rewind_step"),
    (workflows.oneshot, dict(after_prune="mask_units"), TypeError, "after_prune"),
    (workflows.iterative, dict(after_prune=3), TypeError, "after_prune"),
])
def test_workflows_reject_bad_input_before_training(digits, run, kwargs, error, match):
    model = fresh()
    before = {k: w.copy() for k, w in prunable_weights(model).items()}
    with pytest.raises(error, match=match):
        run(model, digits, **kwargs)
    assert model_masks(model) == {}
    assert all(np.array_equal(w, before[k]) for k, w in prunable_weights(model).items())


def test_workflows_reject_data_that_is_not_a_dataset():
    with pytest.raises(TypeError, match="Dataset"):
        workflows.oneshot(fresh(), (np.zeros((4, 1, 8, 8)), np.zeros(4, int)))


@pytest.mark.parametrize("make, norm", [(l1_regularizer, np.abs), (l2_regularizer, np.square)])
def test_fine_tuning_with_a_penalty_shrinks_the_remaining_weights(digits, trained, make, norm):
    """Han et al. fine-tune with L1/L2 regularisation of the remaining weights: the same
    one-shot run with a strong penalty ends with a smaller Σ|w| (Σw²) over the survivors, the
    pruned weights still exactly 0, and the record names the penalty."""
    totals = []
    for regularizer in (None, make(1e-2)):
        model = clone_model(trained)
        r = workflows.oneshot(model, digits, sparsity=0.8, finetune_epochs=2,
                              regularizer=regularizer, **QUICK)
        masks = model_masks(model)
        for name, w in prunable_weights(model).items():
            assert np.all(w[masks[name] == 0] == 0)
        totals.append(sum(float(norm(w).sum()) for w in prunable_weights(model).values()))
        assert r["regularizer"] == (None if regularizer is None else regularizer.description)
    assert r["regularizer"] == ("l1 0.01" if make is l1_regularizer else "l2 0.01")
    assert totals[1] < 0.9 * totals[0]


def test_oneshot_rescales_dropout_and_reuses_given_grads_and_accuracy(digits):
    """One shot rescales the dropout after a pruned layer to D_o·√(density) (Han et al.);
    given ``grads`` are the ones scored (Taylor on them equals Taylor on the model's own) and a
    given ``accuracy_dense`` is recorded as is."""
    def model():
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=0), nn.ReLU(),
                             nn.Dropout(0.5, rng=0), nn.Linear(32, 10, rng=1))
    a, b = model(), model()
    grads = gradients(a, (digits.x_train, digits.y_train), batch_size=64, seed=0)
    ra = workflows.oneshot(a, digits, criterion="taylor", sparsity=0.64, finetune_epochs=0,
                           **QUICK)
    rb = workflows.oneshot(b, digits, criterion="taylor", sparsity=0.64, finetune_epochs=0,
                           grads=grads, accuracy_dense=0.123, **QUICK)
    assert a[3].p == pytest.approx(0.5 * np.sqrt(0.36), abs=1e-3)
    assert ra["dropout"] == {"3": pytest.approx(a[3].p)}
    assert rb["accuracy_dense"] == 0.123 and ra["accuracy_dense"] != 0.123
    for name, mask in model_masks(a).items():
        np.testing.assert_array_equal(mask, model_masks(b)[name])
    c = model()
    workflows.oneshot(c, digits, sparsity=0.64, finetune_epochs=0, rescale=False, **QUICK)
    assert c[3].p == 0.5


def test_records_have_every_report_field(digits, trained):
    r = workflows.oneshot(clone_model(trained), digits, sparsity=0.5, finetune_epochs=1, **QUICK)
    assert all(field in r for field in RECORD_FIELDS)


# ---------------------------------------------------------------- fine-tuning helpers


@pytest.mark.apply
@given(st.floats(0.0, 2.0), st.integers(0, 2**16))
def test_penalties_value_and_gradient(strength, seed):
    """L1: λΣ|w|, gradient λ·sign(w); L2: λΣw², gradient 2λw; over the prunable weights only:
    biases get no gradient, excluded weights neither, and pruned entries get 0."""
    model = nn.Sequential(nn.Linear(5, 4, rng=seed), nn.ReLU(), nn.Linear(4, 3, rng=seed + 1))
    prune_model(model, "random", 0.5, seed=seed)
    w = model[0].weight.data.astype(np.float64)
    for make, value, grad in ((l1_regularizer, np.abs(w).sum(), np.sign(w)),
                              (l2_regularizer, (w * w).sum(), 2 * w)):
        model.zero_grad()
        penalty = make(strength, exclude=["2.weight"])(model)
        assert penalty.item() == pytest.approx(strength * value, rel=1e-5, abs=1e-6)
        penalty.backward()
        np.testing.assert_allclose(model[0].weight.grad, strength * grad, rtol=1e-5, atol=1e-6)
        assert np.all(model[0].weight.grad[model[0].weight.mask == 0] == 0)
        assert model[0].bias.grad is None and model[2].weight.grad is None


@pytest.mark.apply
def test_l2_penalty_in_fit_shrinks_the_weights(digits):
    """Fine-tuning with a strong L2 penalty leaves smaller weights than without it."""
    norms = []
    for regularizer in (None, l2_regularizer(1e-2)):
        model = fresh()
        opt = optim.SGD(model.parameters(), lr=0.05)
        train.fit(model, (digits.x_train, digits.y_train), opt, 1, quiet=True,
                  regularizer=regularizer)
        norms.append(sum(float((w ** 2).sum()) for w in prunable_weights(model).values()))
    assert norms[1] < norms[0]


@pytest.mark.apply
def test_rescale_dropout_follows_han():
    """D_r = D_o·√(C_r/C_o) with C the connections of the layer feeding each dropout; a
    dropout on the input has no such layer and is left alone."""
    model = nn.Sequential(nn.Dropout(0.2), nn.Flatten(), nn.Linear(8, 6, rng=0), nn.ReLU(),
                          nn.Dropout(0.5), nn.Linear(6, 4, rng=1), nn.BatchNorm1d(4),
                          nn.Dropout(0.4), nn.Linear(4, 2, rng=2))
    changed = rescale_dropout(model, 1.0, {"2.weight": 0.36, "5.weight": 0.25,
                                           "8.weight": 1.0})
    assert changed == {"4": (0.5, pytest.approx(0.3)), "7": (0.4, pytest.approx(0.2))}
    assert model[0].p == 0.2 and model[4].p == pytest.approx(0.3)
    assert rescale_dropout(nn.Sequential(nn.Linear(2, 2)), 1.0, 0.5) == {}


@pytest.mark.apply
@given(st.floats(0.05, 0.9), st.lists(st.floats(0.3, 1.0), min_size=1, max_size=4))
def test_rescaling_round_by_round_ends_at_the_final_density(rate, keeps):
    """Han et al.'s D_r = D_o·√(C_r/C_o), applied after each of several pruning rounds (the
    densities falling d_0 = 1 > d_1 > ... > d_R), ends at D_o·√(d_R): the rounds' factors
    √(d_r/d_{r−1}) multiply out, so iterative pruning rescales as a single step would."""
    model = nn.Sequential(nn.Linear(6, 5, rng=0), nn.ReLU(), nn.Dropout(rate, rng=0))
    densities = [1.0] + list(np.cumprod(keeps))
    for old, new in zip(densities, densities[1:]):
        changed = rescale_dropout(model, {"0.weight": old}, new)
        assert changed["2"][1] == pytest.approx(changed["2"][0] * np.sqrt(new / old), rel=1e-12)
    assert model[2].p == pytest.approx(rate * np.sqrt(densities[-1]), rel=1e-9)


@pytest.mark.apply
def test_finetune_helpers_reject_bad_input():
    model = nn.Sequential(nn.Linear(8, 6, rng=0), nn.Dropout(0.5))
    with pytest.raises(ValueError, match="strength"):
        l1_regularizer(-1.0)
    with pytest.raises(TypeError, match="strength"):
        l2_regularizer("0.1")
    with pytest.raises(ValueError, match="not a prunable weight"):
        l1_regularizer(0.1, exclude=["1.weight"])(model)
    with pytest.raises(ValueError, match="no prunable weights"):
        l2_regularizer(0.1)(nn.Sequential(nn.ReLU()))
    with pytest.raises(ValueError, match="new_density"):
        rescale_dropout(model, 1.0, 1.5)
    with pytest.raises(ValueError, match="no density for '0.weight'"):
        rescale_dropout(model, 1.0, {"2.weight": 0.5})
    with pytest.raises(ValueError, match="old_density of '0.weight' is 0"):
        rescale_dropout(model, 0.0, 0.5)
    with pytest.raises(ValueError, match=">= 1"):
        rescale_dropout(model, 0.25, 1.0)
    with pytest.raises(TypeError, match="named_modules"):
        rescale_dropout(object(), 1.0, 0.5)
    assert model[1].p == 0.5  # nothing changed by the refused calls


@pytest.mark.parametrize("run, options", [(workflows.oneshot, {}),
                                          (workflows.iterative, {"rounds": 2})])
def test_after_prune_runs_after_each_pruning_step_before_the_accuracy(digits, trained, run,
                                                                      options):
    """The hook sees the model freshly pruned (its masks already attached), once per pruning
    step; what it does is in force when the pruned accuracy is measured; what it returns is
    recorded per step."""
    model = clone_model(trained)
    seen = []

    def hook(m):
        seen.append(sparsity_of(m))
        params = dict(m.named_parameters())
        params["5.weight"].data[...] = 0  # the output layer now always says 9
        params["5.bias"].data[...] = np.arange(10)
        return len(seen)

    result = run(model, digits, sparsity=0.75, finetune_epochs=0, after_prune=hook, **options)
    steps = result.get("rounds", [result])
    assert [step["after_prune"] for step in steps] == list(range(1, len(steps) + 1))
    assert all(s > 0 for s in seen)
    assert result["accuracy_before_finetune"] == pytest.approx(np.mean(digits.y_test == 9))
