"""Training never fails silently: ``fit`` raises ``DivergenceError`` on a diverging run and
refuses non-finite inputs; the commands exit non-zero with one line and save nothing."""
import math

import numpy as np
import pytest

from nnprune import models, nn, optim
from nnprune.data import DataLoader
from nnprune.divergence import DivergenceError, DivergenceMonitor, first_nonfinite
from nnprune.experiment import demo
from nnprune.train import fit

pytestmark = [pytest.mark.train, pytest.mark.filterwarnings("ignore::RuntimeWarning")]

def mlp(seed=0):
    return models.lenet_300_100(in_channels=1, input_size=8, width=0.2, seed=seed)


@pytest.fixture
def digits_train(digits):
    """The digits' training split, (x, y)."""
    return digits.x_train, digits.y_train


def test_divergence_error_is_a_value_error_from_train():
    """Callers that refuse bad values catch it; ``nnprune.train`` exports it."""
    from nnprune import train
    assert train.DivergenceError is DivergenceError and issubclass(DivergenceError, ValueError)


@pytest.mark.parametrize("lr", [1e4, 50.0])
def test_a_learning_rate_that_diverges_raises_naming_it(lr, digits_train):
    """A rate far too large blows the loss up within the first epoch: the error names the
    rate, where it happened, and a rate ten times smaller."""
    model = mlp()
    with pytest.raises(DivergenceError) as info:
        fit(model, digits_train, optim.SGD(model.parameters(), lr=lr, momentum=0.9), 3, quiet=True)
    err = info.value
    assert err.lr == lr and err.epoch == 1 and err.step is not None
    assert f"learning rate {lr:g}" in str(err) and f"e.g. {lr / 10:g}" in str(err)
    assert "\n" not in str(err)


def test_the_same_model_trains_at_a_sensible_rate(digits_train):
    """No false alarm: the default recipe trains without an error and learns."""
    model = mlp()
    history = fit(model, digits_train, optim.SGD(model.parameters(), lr=0.02, momentum=0.9), 3,
                  quiet=True)
    assert history.last["accuracy"] > 0.5


def test_non_finite_parameters_after_an_epoch_are_divergence(digits_train, digits):
    """A parameter that turned NaN at the last step (so no later loss could show it) is
    caught by the end-of-epoch check, which names it."""
    model = mlp()
    steps = math.ceil(len(digits.x_train) / 64)

    def poison(step):
        if step == steps:
            model[1].bias.data[0] = np.nan

    with pytest.raises(DivergenceError, match=r"parameter 1\.bias holds NaN") as info:
        fit(model, digits_train, optim.SGD(model.parameters(), lr=0.02), 2, quiet=True,
            step_callback=poison)
    assert info.value.epoch == 1 and info.value.step is None


def test_an_epoch_collapsed_onto_one_class_after_learning_is_divergence(digits_train, digits):
    """Dead ReLUs after two good epochs: the output stops depending on the input (one class
    per batch, chance accuracy); the end-of-epoch check says so."""
    model = mlp()
    steps = math.ceil(len(digits.x_train) / 64)

    def kill(step):
        if step >= 2 * steps:  # from the third epoch on, every hidden unit is dead
            model[1].bias.data[...] = -1e3
            model[1].weight.data[...] = 0

    with pytest.raises(DivergenceError, match="no longer depends on the input") as info:
        fit(model, digits_train, optim.SGD(model.parameters(), lr=0.05, momentum=0.9), 4, quiet=True,
            step_callback=kill)
    assert info.value.epoch == 3 and "an earlier epoch reached accuracy" in str(info.value)


def test_monitor_tells_a_slow_start_from_a_collapse():
    """One class predicted at a steady loss (a tiny rate) is not divergence; the same after
    a loss spike to more than 3× the start is."""
    slow, spiked = DivergenceMonitor(), DivergenceMonitor()
    one_class = np.zeros(8, np.int64)
    for step, loss in enumerate([2.3, 2.3, 2.29], 1):
        slow.batch(loss, one_class, 10, epoch=1, step=step, lr=1e-6)
    slow.epoch_end(mlp(), epoch=1, loss=2.3, accuracy=0.1, lr=1e-6)
    for step, loss in enumerate([2.3, 9.0, 2.3], 1):
        spiked.batch(loss, one_class, 10, epoch=1, step=step, lr=0.5)
    with pytest.raises(DivergenceError, match="the loss spiked to 9"):
        spiked.epoch_end(mlp(), epoch=1, loss=4.5, accuracy=0.1, lr=0.5)


def test_monitor_flags_losses_far_above_the_start():
    """Batch losses above 10× max(first loss, ln K), and epoch means above 10× the first
    epoch's, are divergence; NaN and ∞ always are."""
    monitor = DivergenceMonitor()
    spread = np.arange(10)
    monitor.batch(0.5, spread, 10, epoch=1, step=1, lr=0.1)  # reference max(0.5, ln 10)
    monitor.batch(10 * math.log(10) - 0.01, spread, 10, epoch=1, step=2, lr=0.1)
    with pytest.raises(DivergenceError, match="more than 10×"):
        monitor.batch(10 * math.log(10) + 0.01, spread, 10, epoch=1, step=3, lr=0.1)
    for bad in (math.nan, math.inf):
        with pytest.raises(DivergenceError, match="the batch loss is"):
            DivergenceMonitor().batch(bad, spread, 10, epoch=1, step=1, lr=0.1)
    epochs = DivergenceMonitor()
    epochs.batch(2.0, spread, 10, epoch=1, step=1, lr=0.1)
    epochs.epoch_end(mlp(), epoch=1, loss=3.0, accuracy=0.5, lr=0.1)
    with pytest.raises(DivergenceError, match="first epoch's 3"):
        epochs.epoch_end(mlp(), epoch=2, loss=31.0, accuracy=0.5, lr=0.1)


@pytest.mark.parametrize("where", ["train", "val", "loader"])
def test_non_finite_inputs_are_refused_naming_the_first_bad_sample(where, digits_train,
                                                                  digits):
    x = digits.x_train[:100].copy()
    x[37, 0, 3, 4], x[60, 0, 0, 0] = np.nan, np.inf
    y = digits.y_train[:100]
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.02)
    kwargs = {"train": dict(train=(x, y)), "val": dict(train=digits_train, val=(x, y)),
              "loader": dict(train=DataLoader(x, y, batch_size=16))}[where]
    with pytest.raises(ValueError, match=r"x\[37\] holds nan") as info:
        fit(model, optimizer=opt, epochs=1, quiet=True, **kwargs)
    assert not isinstance(info.value, DivergenceError)
    assert first_nonfinite(x) == 37 and first_nonfinite(digits.x_train) is None


# ---------------------------------------------------------------------- the commands
def assert_divergence_line(err, *fragments):
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("nnprune: error: training diverged")
    for fragment in fragments:
        assert fragment in lines[0]


SMALL = ("--width", "0.2", "--quiet")


def test_train_exits_non_zero_and_leaves_an_existing_file_untouched(cli, tmp_path):
    out = tmp_path / "m.npz"
    out.write_bytes(b"an earlier model")
    status, _, err = cli("train", "--model", "lenet_300_100", "--epochs", "1",
                         "--lr", "1e4", *SMALL, "--out", out)
    assert status == 1
    assert_divergence_line(err, "learning rate 10000", "--lr")
    assert out.read_bytes() == b"an earlier model"
    status, _, _ = cli("train", "--model", "lenet_300_100", "--epochs", "1", "--lr",
                       "1e4", *SMALL, "--out", tmp_path / "new.npz")
    assert status == 1 and not (tmp_path / "new.npz").exists()


def test_prune_and_sweep_exit_non_zero_and_save_nothing(cli, tmp_path):
    dense = tmp_path / "dense.npz"
    assert cli("train", "--model", "lenet_300_100", "--epochs", "1", *SMALL,
               "--out", dense)[0] == 0
    status, _, err = cli("prune", dense, "--sparsity", "0.5", "--finetune-epochs",
                         "1", "--finetune-lr", "1e4", "--quiet", "--out", tmp_path / "p.npz",
                         "--json", tmp_path / "p.json")
    assert status == 1
    assert_divergence_line(err, "--finetune-lr")
    assert not (tmp_path / "p.npz").exists() and not (tmp_path / "p.json").exists()
    status, _, err = cli("sweep", "--model", "lenet_300_100", "--epochs", "1",
                         "--lr", "1e4", "--criteria", "magnitude", "--sparsities", "0.5",
                         *SMALL, "--out", tmp_path / "sweep")
    assert status == 1
    assert_divergence_line(err, "--finetune-lr")
    assert not (tmp_path / "sweep").exists()


def test_demo_exits_non_zero_and_writes_no_report(cli, tmp_path, monkeypatch):
    broken = demo.DemoSettings(models=(demo.DemoModel("lenet_300_100", epochs=1,
                                                      finetune_epochs=1, lr=1e4),),
                               criteria=("magnitude",), sparsities=(0.5,), scopes=("global",))
    monkeypatch.setattr(demo, "QUICK", broken)
    status, _, err = cli("demo", "--quick", "--quiet", "--out", tmp_path / "demo")
    assert status == 1
    assert_divergence_line(err, "learning rate 10000")
    assert not (tmp_path / "demo").exists()
