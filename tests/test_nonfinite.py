"""Non-finite values never pass silently: NaN goes through ReLU and max-pooling as in PyTorch
(so a diverged network's loss reads NaN, not a finite number computed from zeros), and every
pruning criterion refuses NaN or infinite weights, naming the layer."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from nnprune import functional as F
from nnprune import io, nn
from nnprune.autograd.tensor import Tensor
from nnprune.cli import main
from nnprune.prune import CRITERIA, NEEDS_GRADS, prune_model

from strategies import arrays, shapes


@pytest.mark.kernels
@given(x=shapes(max_dims=3).flatmap(arrays), data=st.data())
def test_relu_keeps_nan_and_passes_its_gradient(x, data):
    """relu(NaN) = NaN and dL/dx = dout there, as PyTorch (its mask is ``not x <= 0``);
    elsewhere max(x, 0) with the gradient where x > 0."""
    nan = data.draw(st.lists(st.booleans(), min_size=x.size, max_size=x.size))
    x = np.where(np.reshape(nan, x.shape), np.nan, x)
    t = Tensor(x, requires_grad=True)
    out = F.relu(t)
    out.sum().backward()
    np.testing.assert_array_equal(np.isnan(out.data), np.isnan(x))
    finite = ~np.isnan(x)
    np.testing.assert_array_equal(out.data[finite], np.maximum(x[finite], 0))
    np.testing.assert_array_equal(t.grad, (np.isnan(x) | (x > 0)).astype(x.dtype))


@pytest.mark.kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_of_every_special_value_has_the_value_and_sign_of_pytorchs(dtype):
    """-inf, negatives and -0.0 give +0.0 (never -0.0), the smallest subnormal and +inf
    themselves, NaN gives NaN: bit for bit what np.where(x > 0 or NaN, x, 0) gives, in
    the input's dtype."""
    tiny = np.finfo(dtype).smallest_subnormal
    x = np.array([-np.inf, -1, -tiny, -0.0, 0.0, tiny, 1, np.inf, np.nan], dtype)
    out = F.relu(Tensor(x)).data
    expected = np.array([0, 0, 0, 0, 0, tiny, 1, np.inf, np.nan], dtype)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(np.signbit(out), np.zeros(9, bool))


@pytest.mark.kernels
@pytest.mark.parametrize("padding", [0, 1])
def test_max_pool_outputs_nan_for_a_window_holding_nan(padding):
    x = np.arange(32, dtype=np.float64).reshape(1, 2, 4, 4)
    x[0, 1, 2, 3] = np.nan
    out = F.max_pool2d(Tensor(x), 2, padding=padding).data
    windows = np.isnan(out)
    assert windows.sum() == 1 and windows[0, 1].any() and not windows[0, 0].any()


@pytest.mark.kernels
@given(nan=st.lists(st.booleans(), min_size=4, max_size=4))
def test_max_pool_sends_the_gradient_to_the_last_nan_of_a_window(nan):
    """PyTorch's rule (an entry replaces the max when greater or NaN): the window's last NaN
    in row-major order receives dout; without NaN, its first maximum."""
    x = np.array([5.0, 9.0, 9.0, 3.0])
    x[np.array(nan)] = np.nan
    t = Tensor(x.reshape(1, 1, 2, 2), requires_grad=True)
    out = F.max_pool2d(t, 2)
    out.sum().backward()
    winner = max(np.flatnonzero(nan)) if any(nan) else int(np.argmax(x))
    assert np.isnan(out.data).item() == any(nan)
    np.testing.assert_array_equal(t.grad.ravel(), np.eye(4)[winner])


@pytest.mark.nn
def test_one_nan_pixel_makes_the_loss_nan():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    x = np.random.default_rng(0).standard_normal((4, 1, 4, 4)).astype(np.float32)
    x[2, 0, 1, 1] = np.nan
    loss = F.cross_entropy(model(Tensor(x)), np.array([0, 1, 2, 0]))
    assert np.isnan(loss.data)


def nan_model():
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8, rng=0), nn.ReLU(), nn.Linear(8, 3, rng=1))
    model[3].weight.data[1, 2] = np.nan
    return model


@pytest.mark.scores
@pytest.mark.parametrize("criterion", CRITERIA)
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_every_criterion_refuses_non_finite_weights_naming_the_layer(criterion, bad):
    model = nan_model()
    model[3].weight.data[1, 2] = bad
    ones = {name: np.ones_like(p.data) for name, p in model.named_parameters()}
    needs = {"obd": {"hessian_diag": ones},
             "obs": {"calibration": (np.ones((4, 1, 4, 4), np.float32), np.zeros(4, int))}}
    extra = {"grads": ones} if criterion in NEEDS_GRADS else needs.get(criterion, {})
    with pytest.raises(ValueError, match=r"weight '3\.weight' has 1 NaN or infinite") as info:
        prune_model(model, criterion, 0.5, seed=0, **extra)
    assert "index (1, 2)" in str(info.value)
    assert all(p.mask is None for p in model.parameters())


@pytest.mark.scores
def test_a_non_finite_gradient_is_refused_naming_the_layer():
    model = nn.Sequential(nn.Linear(4, 3, rng=0))
    grads = {"0.weight": np.full((3, 4), np.nan)}
    with pytest.raises(ValueError, match=r"gradient of weight '0\.weight' has 12 NaN"):
        prune_model(model, "taylor", 0.5, grads=grads)


@pytest.mark.cli
@pytest.mark.parametrize("criterion", ["random", "magnitude", "taylor"])
def test_prune_refuses_a_file_with_nan_weights(capsys, tmp_path, criterion):
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10, rng=0))
    model[1].weight.data[3, 5] = np.nan
    io.save(tmp_path / "nan.npz", model, {"model": "tiny", "dataset": "digits"})
    status = main(["prune", str(tmp_path / "nan.npz"), "--criterion", criterion, "--quiet",
                   "--out", str(tmp_path / "p.npz")])
    err = capsys.readouterr().err
    assert status == 1 and "'1.weight'" in err and "NaN" in err and "Traceback" not in err
    assert not (tmp_path / "p.npz").exists()


@pytest.mark.scores
@pytest.mark.parametrize("criterion", [c for c in CRITERIA if c != "obs"])
def test_compute_scores_refuses_non_finite_weights_naming_them(criterion):
    """The arrays-in entry point (a PyTorch state dict as NumPy) refuses NaN as prune_model."""
    from nnprune.prune import compute_scores

    w = {"fc1.weight": np.ones((3, 4)), "fc2.weight": np.ones((2, 3))}
    w["fc2.weight"][1, 0] = np.nan
    ones = {k: np.ones_like(v) for k, v in w.items()}
    with pytest.raises(ValueError, match=r"weight 'fc2\.weight' has 1 NaN"):
        compute_scores(criterion, w, grads=ones, seed=0, hessian_diag=ones)
