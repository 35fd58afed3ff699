"""Training and evaluation: digits smoke runs, exact reproducibility, hooks, bad input."""
import json

import numpy as np
import pytest

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.data import DataLoader
from nnprune.models import lenet_300_100, simple_cnn
from nnprune.optim import SGD, Adam, StepLR
from nnprune.train import History, evaluate, fit, gradients, predict

pytestmark = pytest.mark.train


def small_mlp(seed=0, dtype=np.float32):
    return lenet_300_100(in_channels=1, input_size=8, width=0.2, seed=seed, dtype=dtype)


def subset(data, n=256):
    return data.x_train[:n], data.y_train[:n]


def weights(model):
    return [p.data.copy() for p in model.parameters()]


# ---------------------------------------------------------------------- digits smoke runs
def test_mlp_learns_digits(digits):
    """LeNet-300-100 on 8×8 digits: far above chance (10 %) after three epochs."""
    model = lenet_300_100(in_channels=1, input_size=8, seed=0)
    history = fit(model, (digits.x_train, digits.y_train), SGD(model.parameters(), lr=0.05,
                  momentum=0.9), 3, batch_size=32, val=(digits.x_test, digits.y_test), quiet=True)
    assert history.last["val_accuracy"] >= 0.93
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]
    assert evaluate(model, (digits.x_test, digits.y_test)) == {
        "loss": history.last["val_loss"], "accuracy": history.last["val_accuracy"]}


def test_small_cnn_learns_digits(digits):
    """The small CNN on 8×8 digits: far above chance after three epochs."""
    model = simple_cnn(in_channels=1, input_size=8, seed=0)
    history = fit(model, (digits.x_train, digits.y_train), SGD(model.parameters(), lr=0.02,
                  momentum=0.9), 3, batch_size=16, quiet=True)
    assert evaluate(model, (digits.x_test, digits.y_test))["accuracy"] >= 0.90
    assert history.epochs[-1]["loss"] < history.epochs[0]["loss"]


# ---------------------------------------------------------------------- reproducibility
def train_once(data, seed, epochs=2):
    model = small_mlp(seed=0)
    fit(model, subset(data), SGD(model.parameters(), lr=0.05, momentum=0.9), epochs,
        batch_size=16, seed=seed, quiet=True)
    return weights(model)


def test_same_seed_gives_bit_identical_weights(digits):
    """Two runs from scratch with the same seed end with exactly the same bits."""
    first, second = train_once(digits, seed=7), train_once(digits, seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(first, second))


def test_same_seed_gives_bit_identical_cnn_with_batch_norm_and_dropout(digits):
    """Conv, BatchNorm (running statistics too), Dropout (its own seeded generator), max-pool,
    Adam: two runs built and trained from the same seeds end with the same bits."""
    def run():
        model = nn.Sequential(
            nn.Conv2d(1, 4, 3, padding=1, rng=0), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Dropout(0.3, rng=1), nn.Linear(4 * 4 * 4, 10, rng=2))
        fit(model, subset(digits, 128), Adam(model.parameters(), lr=1e-2), 2, batch_size=16,
            seed=3, quiet=True)
        return model.state_dict()

    first, second = run(), run()
    assert first.keys() == second.keys()
    assert all(np.array_equal(first[k], second[k]) for k in first)


def test_quiet_prints_nothing_and_verbose_reports_each_epoch(digits, capsys):
    """quiet=True: no bar, no line; otherwise one summary line per epoch with loss and acc."""
    model = small_mlp()
    fit(model, subset(digits, 32), SGD(model.parameters(), lr=0.1), 2, quiet=True)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
    fit(model, subset(digits, 32), SGD(model.parameters(), lr=0.1), 2, quiet=False, desc="run")
    out, err = capsys.readouterr()
    assert out.count("run epoch") == 2 and "run epoch 2/2: loss" in out and "acc" in out


def test_different_seed_gives_different_weights(digits):
    """The seed drives the shuffling: another seed, another order, other weights."""
    first, other = train_once(digits, seed=7), train_once(digits, seed=8)
    assert not all(np.array_equal(a, b) for a, b in zip(first, other))


def test_a_dataloader_trains_reproducibly(digits):
    x, y = subset(digits)
    runs = []
    for _ in range(2):
        model = small_mlp()
        loader = DataLoader(x, y, batch_size=16, shuffle=True, seed=3)
        history = fit(model, loader, SGD(model.parameters(), lr=0.05), 2, quiet=True,
                      val=DataLoader(x, y, batch_size=100))
        runs.append(weights(model))
        assert history.last["val_accuracy"] == evaluate(model, (x, y))["accuracy"]
    assert all(np.array_equal(a, b) for a, b in zip(*runs))


# ---------------------------------------------------------------------- hooks and history
def test_step_callback_sees_every_global_step(digits):
    """step_callback(step) runs once after every optimizer step, with steps 1, 2, ..."""
    x, y = subset(digits, 100)  # batches of 32: 4 steps per epoch (the last holds 4 samples)
    model = small_mlp()
    steps, lrs = [], []
    opt = SGD(model.parameters(), lr=0.1)
    fit(model, (x, y), opt, 3, batch_size=32, quiet=True,
        step_callback=lambda step: (steps.append(step), lrs.append(opt.lr)))
    assert steps == list(range(1, 13))


def test_regularizer_is_added_to_every_step(digits):
    """regularizer(model) runs once per step and its gradient moves the weights."""
    x, y = subset(digits, 64)
    calls = []

    def l2(model):
        calls.append(model)
        return sum(((p * p).sum() for p in model.parameters()), Tensor(0.0)) * 0.5

    plain, penalised = small_mlp(), small_mlp()
    fit(plain, (x, y), SGD(plain.parameters(), lr=0.1), 2, batch_size=16, quiet=True)
    history = fit(penalised, (x, y), SGD(penalised.parameters(), lr=0.1), 2, batch_size=16,
                  quiet=True, regularizer=l2)
    assert len(calls) == 8 and all(m is penalised for m in calls)
    norm = lambda m: sum(float((p.data ** 2).sum()) for p in m.parameters())  # noqa: E731
    assert norm(penalised) < norm(plain)
    assert history.last["loss"] > 0


def test_history_records_the_cross_entropy_without_the_penalty(digits):
    """A constant penalty changes neither the weights nor the recorded loss."""
    x, y = subset(digits, 64)
    plain, shifted = small_mlp(), small_mlp()
    h_plain = fit(plain, (x, y), SGD(plain.parameters(), lr=0.1), 2, batch_size=16, quiet=True)
    h_shift = fit(shifted, (x, y), SGD(shifted.parameters(), lr=0.1), 2, batch_size=16,
                  quiet=True, regularizer=lambda m: Tensor(1000.0))
    np.testing.assert_allclose([e["loss"] for e in h_shift.epochs],
                               [e["loss"] for e in h_plain.epochs], rtol=1e-5)
    for a, b in zip(weights(plain), weights(shifted)):
        np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_history_records_every_epoch_and_the_scheduled_rate(digits):
    model = small_mlp()
    opt = SGD(model.parameters(), lr=0.1)
    history = fit(model, subset(digits, 64), opt, 4, batch_size=32, quiet=True,
                  scheduler=StepLR(opt, step_size=2, gamma=0.5), val=subset(digits, 32))
    assert isinstance(history, History) and len(history) == 4
    assert [e["epoch"] for e in history.epochs] == [1, 2, 3, 4]
    assert [e["lr"] for e in history.epochs] == [0.1, 0.1, 0.05, 0.05]
    assert opt.lr == 0.025
    for e in history.epochs:
        assert set(e) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds"}
        assert 0 <= e["accuracy"] <= 1 and 0 <= e["val_accuracy"] <= 1 and e["seconds"] >= 0
    assert json.loads(json.dumps(history.to_dict())) == history.to_dict()
    no_val = fit(small_mlp(), subset(digits, 32), SGD(small_mlp().parameters(), lr=0.1), 1,
                 quiet=True)
    assert no_val.last["val_loss"] is None and no_val.last["val_accuracy"] is None


def test_epoch_metrics_average_over_the_samples(digits):
    """With lr → tiny, the epoch's loss is the sample-weighted mean of the batch losses."""
    x, y = subset(digits, 50)
    model = small_mlp(dtype=np.float64)
    history = fit(model, (x, y), SGD(model.parameters(), lr=1e-12), 1, batch_size=32,
                  seed=0, quiet=True)
    ref = evaluate(model, (x, y))
    np.testing.assert_allclose(history.last["loss"], ref["loss"], rtol=1e-9)
    assert history.last["accuracy"] == ref["accuracy"]


def test_fit_trains_a_pruned_model_without_reviving_weights(digits):
    model = small_mlp()
    mask = (np.random.default_rng(0).random(model[1].weight.shape) > 0.5).astype(np.float32)
    model[1].weight.set_mask(mask)
    fit(model, subset(digits, 64), SGD(model.parameters(), lr=0.1, momentum=0.9), 2,
        batch_size=16, quiet=True)
    assert np.all(model[1].weight.data[mask == 0] == 0)
    assert np.any(model[1].weight.data[mask == 1] != 0)


# ---------------------------------------------------------------------- modes
def modes(model):
    return [m.training for m in model.modules()]


def test_fit_evaluate_predict_gradients_restore_the_modes(digits):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16, rng=0), nn.Dropout(0.5, rng=1),
                          nn.ReLU(), nn.Linear(16, 10, rng=2))
    model.eval()
    model[2].train()  # a mixed state must come back exactly
    before = modes(model)
    xy = subset(digits, 32)
    fit(model, xy, SGD(model.parameters(), lr=0.1), 1, quiet=True)
    assert modes(model) == before
    evaluate(model, xy)
    predict(model, xy[0])
    gradients(model, xy)
    assert modes(model) == before


def test_evaluation_is_deterministic_in_eval_mode(digits):
    """Dropout is off while evaluating: two evaluations of a training-mode model agree."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32, rng=0), nn.Dropout(0.5, rng=1),
                          nn.ReLU(), nn.Linear(32, 10, rng=2))
    xy = subset(digits, 64)
    assert evaluate(model, xy) == evaluate(model, xy)
    np.testing.assert_array_equal(predict(model, xy[0]), predict(model, xy[0]))


# ---------------------------------------------------------------------- evaluate and predict
def test_evaluate_matches_a_direct_computation(digits):
    """loss = mean −log softmax(z)[y]; accuracy = mean [argmax z = y], whatever the batch size."""
    model = small_mlp(seed=2, dtype=np.float64)
    x, y = subset(digits, 70)
    z = predict(model, x)
    log_p = z - z.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    expected_loss = -log_p[np.arange(len(y)), y].mean()
    for batch_size in (1, 16, 256):
        out = evaluate(model, (x, y), batch_size=batch_size)
        np.testing.assert_allclose(out["loss"], expected_loss, rtol=1e-10)
        assert out["accuracy"] == np.mean(z.argmax(axis=1) == y)


def test_predict_does_not_depend_on_the_batch_size(digits):
    model = simple_cnn(in_channels=1, input_size=8, width=0.25, seed=0, dtype=np.float64)
    x = digits.x_test[:37]
    full = predict(model, x, batch_size=256)
    assert full.shape == (37, 10)
    np.testing.assert_allclose(predict(model, x, batch_size=5), full, rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------------- gradients
def test_gradients_are_the_gradient_of_the_mean_loss(digits):
    """g = Σ_b (n_b/n) ∇L_b equals ∇ of the mean loss over all samples, for any batch size."""
    model = small_mlp(seed=1, dtype=np.float64)
    x, y = subset(digits, 50)
    model.zero_grad()
    F.cross_entropy(model(Tensor(x, dtype=np.float64)), y).backward()
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    for batch_size in (7, 50, 64):
        g = gradients(model, (x, y), batch_size=batch_size)
        assert g.keys() == expected.keys()
        for name in g:
            np.testing.assert_allclose(g[name], expected[name], rtol=1e-9, atol=1e-12,
                                       err_msg=f"{name}, batch_size={batch_size}")


def test_gradients_leave_the_model_untouched(digits):
    """.grad values, BatchNorm statistics and the weights are as they were before the call."""
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 16, rng=0), nn.BatchNorm1d(16),
                          nn.ReLU(), nn.Linear(16, 10, rng=1))
    sentinel = np.full(model[1].weight.shape, 3.0, np.float32)
    model[1].weight.grad = sentinel
    state = model.state_dict()
    g = gradients(model, subset(digits, 64), batch_size=16, num_batches=2)
    assert model[1].weight.grad is sentinel and np.all(sentinel == 3.0)
    assert all(p.grad is None for name, p in model.named_parameters() if name != "1.weight")
    after = model.state_dict()
    assert all(np.array_equal(state[k], after[k]) for k in state)
    assert all(np.any(v != 0) for k, v in g.items() if k.endswith("weight"))


def test_gradients_of_pruned_entries_are_zero_and_batches_are_seeded(digits):
    model = small_mlp(seed=0)
    mask = (np.random.default_rng(1).random(model[1].weight.shape) > 0.3).astype(np.float32)
    model[1].weight.set_mask(mask)
    xy = subset(digits, 128)
    g = gradients(model, xy, batch_size=16, num_batches=2, seed=5)
    assert np.all(g["1.weight"][mask == 0] == 0)
    again = gradients(model, xy, batch_size=16, num_batches=2, seed=5)
    other = gradients(model, xy, batch_size=16, num_batches=2, seed=6)
    assert all(np.array_equal(g[k], again[k]) for k in g)
    assert not all(np.array_equal(g[k], other[k]) for k in g)


# ---------------------------------------------------------------------- bad input
@pytest.fixture
def setup(digits):
    model = small_mlp()
    return model, subset(digits, 40), SGD(model.parameters(), lr=0.1)


@pytest.mark.parametrize("epochs", [0, -1, 1.5, True, None])
def test_fit_rejects_bad_epochs(setup, epochs):
    model, xy, opt = setup
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        fit(model, xy, opt, epochs, quiet=True)


def test_fit_rejects_bad_data(setup):
    model, (x, y), opt = setup
    cases = [
        ((x[:0], y[:0]), ValueError, "train is empty"),
        ((x, y[:-1]), ValueError, "x has 40 samples but y has 39 labels"),
        ((x, y.astype(np.float32)), TypeError, "labels y must be integers"),
        ((x, y[:, None]), ValueError, "y \\(N,\\)"),
        (x, TypeError, "train must be an \\(x, y\\) pair"),
        ((x, y, y), TypeError, "train must be an \\(x, y\\) pair"),
    ]
    for train, error, message in cases:
        with pytest.raises(error, match=message):
            fit(model, train, opt, 1, quiet=True)
    with pytest.raises(ValueError, match="val: x has 40 samples but y has 3"):
        fit(model, (x, y), opt, 1, quiet=True, val=(x, y[:3]))


@pytest.mark.parametrize("labels, message", [
    (lambda y: y + 10, r"class indices in \[0, 10\).*got labels in \[10, 19\]"),
    (lambda y: y - 1, r"class indices in \[0, 10\).*\[-1, 8\]"),
])
def test_fit_rejects_labels_out_of_range(setup, labels, message):
    model, (x, y), opt = setup
    with pytest.raises(ValueError, match=message):
        fit(model, (x, labels(y)), opt, 1, quiet=True)
    with pytest.raises(ValueError, match=message):
        evaluate(model, (x, labels(y)))


def test_fit_rejects_a_model_whose_output_is_not_2d(digits):
    model = nn.Sequential(nn.Conv2d(1, 10, 3, rng=0))
    with pytest.raises(ValueError, match=r"logits of shape \(N, K\).*got shape \(\d+, 10, 6, 6\)"):
        fit(model, subset(digits, 8), SGD(model.parameters(), lr=0.1), 1, quiet=True)


def test_fit_rejects_bad_arguments(setup):
    model, xy, opt = setup
    with pytest.raises(TypeError, match="model must be an nnprune.nn.Module"):
        fit(lambda x: x, xy, opt, 1)
    with pytest.raises(TypeError, match="optimizer must be an nnprune.optim.Optimizer"):
        fit(model, xy, "sgd", 1)
    with pytest.raises(ValueError, match="batch_size must be a positive int, got 0"):
        fit(model, xy, opt, 1, batch_size=0)
    with pytest.raises(TypeError, match="regularizer must be callable"):
        fit(model, xy, opt, 1, regularizer=0.1)
    with pytest.raises(TypeError, match="step_callback must be callable"):
        fit(model, xy, opt, 1, step_callback="prune")
    with pytest.raises(TypeError, match="scheduler must have a step"):
        fit(model, xy, opt, 1, scheduler=0.5)


def test_evaluate_predict_gradients_reject_bad_input(setup):
    model, (x, y), _ = setup
    with pytest.raises(ValueError, match="data is empty"):
        evaluate(model, (x[:0], y[:0]))
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        evaluate(model, (x, y), batch_size=-2)
    with pytest.raises(TypeError, match="model must be an nnprune.nn.Module"):
        evaluate(None, (x, y))
    with pytest.raises(ValueError, match="x must be a non-empty"):
        predict(model, x[:0])
    with pytest.raises(TypeError, match="x must be numeric"):
        predict(model, np.array(["a", "b"]))
    with pytest.raises(ValueError, match="num_batches must be a positive int"):
        gradients(model, (x, y), num_batches=0)
    with pytest.raises(ValueError, match="x has 40 samples but y has 2"):
        gradients(model, (x, y[:2]))
    with pytest.raises(TypeError, match="labels y must be integers"):
        gradients(model, (x, y.astype(float)))
