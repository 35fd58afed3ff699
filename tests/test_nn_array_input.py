"""Every layer takes a NumPy array (or a nested list) as a constant input, as ``Linear`` and
``Conv2d`` do, and gives what it gives for the same values in a Tensor."""
import numpy as np
import pytest

from nnprune import Tensor, models, nn

pytestmark = pytest.mark.nn

X = np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32)


@pytest.mark.parametrize("layer, x", [
    (nn.ReLU(), X), (nn.Tanh(), X), (nn.Flatten(), X), (nn.BatchNorm2d(1), X),
    (nn.BatchNorm1d(64), X.reshape(2, 64)), (nn.MaxPool2d(2), X), (nn.AvgPool2d(2), X),
    (nn.Linear(8, 3, rng=0), X), (nn.Conv2d(1, 2, 3, rng=0), X),
    (models.lenet_300_100(in_channels=1, input_size=8, seed=0), X),
    (models.lenet5(in_channels=1, input_size=8, seed=0), X),
])
@pytest.mark.parametrize("as_list", [False, True])
def test_an_array_or_a_list_is_taken_like_a_tensor(layer, x, as_list):
    layer.eval()
    expected = layer(Tensor(x)).data
    out = layer(x.tolist() if as_list else x)
    assert isinstance(out, Tensor)
    assert out.shape == expected.shape and out.dtype == expected.dtype
    np.testing.assert_allclose(out.data, expected, rtol=1e-6, atol=1e-6)
