"""The bench compares like with like: its kernel-only training step computes the gradients
autograd computes, and its FLOP count is 2 · MACs."""
import numpy as np
import pytest

from nnprune import Tensor, functional as F, models, nn
from nnprune.bench.conv import CONV_CASES, conv_flops
from nnprune.bench.step import kernel_backward

pytestmark = pytest.mark.kernels


@pytest.mark.parametrize("build", [
    lambda: models.lenet5(seed=0, dtype=np.float64),
    lambda: nn.Sequential(nn.Conv2d(2, 3, 3, padding=1, rng=0, dtype=np.float64),
                          nn.AvgPool2d(2), nn.ReLU(), nn.Flatten(),
                          nn.Linear(3 * 4 * 4, 5, bias=False, rng=0, dtype=np.float64)),
])
def test_the_kernel_step_has_the_autograd_gradients(build):
    model = build()
    rng = np.random.default_rng(0)
    c = model[0].weight.shape[1]
    x = rng.random((3, c, 28, 28) if c == 1 else (3, c, 8, 8))
    y = rng.integers(0, 5, 3)
    F.cross_entropy(model(Tensor(x)), y).backward()
    expected = {name: p.grad.copy() for name, p in model.named_parameters()}
    model.zero_grad()
    kernel_backward(model, x, y)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(p.grad, expected[name], rtol=1e-10, atol=1e-12, err_msg=name)


def test_conv_flops_are_two_per_multiply_accumulate():
    """LeNet conv1: 64 images × 6 filters × 24·24 outputs × 1·5·5 MACs, two FLOPs each."""
    assert conv_flops(CONV_CASES[0]) == 2 * 64 * 6 * 24 * 24 * 25
    assert conv_flops(CONV_CASES[3]) == 2 * 64 * 128 * 16 * 16 * 64 * 9
