"""Hidden tests of the course's tasks: the instructor keeps them apart from the student copy
(``nnprune assignment make --hidden DIR``) and grades with them (``--hidden DIR``).

Edge cases the students' own tests do not spell out; plain NumPy references only.
"""
import math

import numpy as np
import pytest

from nnprune import Tensor, nn
from nnprune.count import count
from nnprune.prune.groups import group_scores
from nnprune.prune.hessian import obd_saliency, obs_update
from nnprune.prune.masks import percentile_mask, topk_mask
from nnprune.prune.schedules import polynomial_sparsity
from nnprune.prune.scope import global_topk_masks


@pytest.mark.task1_1
def test_mul_by_a_scalar_tensor_sums_its_gradient():
    a = Tensor(np.arange(6.0).reshape(2, 3), requires_grad=True, dtype=np.float64)
    s = Tensor(2.0, requires_grad=True, dtype=np.float64)
    (a * s * a).sum().backward()
    assert np.allclose(a.grad, 4 * a.data) and math.isclose(float(s.grad), 55.0)


@pytest.mark.task2_1
def test_topk_with_more_dead_than_k_keeps_them_dead_and_prunes_nothing_else():
    old = np.array([0.0, 0.0, 0.0, 1.0, 1.0])
    mask = topk_mask(np.array([5.0, 4.0, 3.0, 0.1, 9.0]), 0.2, old)
    assert mask.tolist() == [0, 0, 0, 1, 1]
    assert topk_mask(np.array([2.0, 2.0, 2.0]), 0.5).tolist() == [0, 0, 1]


@pytest.mark.task2_2
def test_percentile_at_100_prunes_everything_and_keeps_old_zeros():
    scores = np.array([[4.0, 1.0], [3.0, 2.0]])
    assert not percentile_mask(scores, 100).any()
    assert percentile_mask(scores, 50, np.array([[0.0, 1.0], [1.0, 1.0]])).tolist() == [[0, 0],
                                                                                      [1, 0]]


@pytest.mark.task2_3
def test_global_topk_min_keep_larger_than_a_layer_keeps_it_whole():
    scores = {"a": np.array([0.1, 0.2]), "b": np.array([1.0, 2.0, 3.0, 4.0])}
    masks, report = global_topk_masks(scores, 0.5, min_keep=3)
    assert masks["a"].tolist() == [1, 1] and masks["b"].tolist() == [0, 1, 1, 1]
    assert math.isclose(report.sparsity, 1 / 6)


@pytest.mark.task2_4
def test_channel_l2_of_a_linear_weight_is_the_column_norm():
    w = np.array([[3.0, 0.0, 1.0], [4.0, 0.0, -1.0]])
    assert np.allclose(group_scores(w, "channel", "l2"), [5.0, 0.0, math.sqrt(2)])


@pytest.mark.task3_1
def test_linear_power_with_frequency_rises_in_equal_steps():
    values = [polynomial_sparsity(t, 0.2, 0.8, 10, 3, frequency=5, power=1) for t in (10, 15, 20, 25, 99)]
    assert np.allclose(values, [0.2, 0.4, 0.6, 0.8, 0.8])


@pytest.mark.task3_2
def test_obd_of_a_zero_curvature_or_zero_weight_is_zero():
    assert np.array_equal(obd_saliency(np.array([0.0, 3.0]), np.array([5.0, 0.0])), [0.0, 0.0])


@pytest.mark.task3_3
def test_obs_on_the_last_index_of_a_coupled_pair():
    h = np.array([[2.0, 1.0], [1.0, 2.0]])
    new, loss = obs_update(np.array([1.0, 1.0]), np.linalg.inv(h), 1)
    assert np.allclose(new, [1.5, 0.0]) and math.isclose(loss, 0.75)


@pytest.mark.task4_1
def test_macs_with_dilation_and_stride():
    model = nn.Sequential(nn.Conv2d(2, 3, (3, 2), stride=(2, 3), padding=(1, 0), dilation=2))
    report = count(model, (2, 11, 10))
    # rows: (11 + 2 - 4 - 1) // 2 + 1 = 5, columns: (10 - 2 - 1) // 3 + 1 = 3
    assert report.layers[0].output_shape == (3, 5, 3) and report.macs == 3 * 2 * 3 * 2 * 15


@pytest.mark.task4_2
def test_removed_filters_slice_the_batch_norm2d_between_two_convs():
    from nnprune.prune.surgery import remove_filters

    model = nn.Sequential(nn.Conv2d(1, 4, 2, rng=0), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 2, 2, rng=1)).eval()
    model[1].running_mean[:] = [0.5, 0.0, -1.0, 0.0]
    for array in (model[0].weight.data, model[0].bias.data, model[1].weight.data,
                  model[1].bias.data, model[1].running_mean):
        array[[1, 3]] = 0.0
    small = remove_filters(model, 0, [0, 2], fold=False).eval()
    assert np.array_equal(small[1].running_mean, [0.5, -1.0]) and small[3].in_channels == 2
    x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
    assert np.allclose(small(x).data, model(x).data, atol=1e-5)


@pytest.mark.task1_2
def test_a_1x1_conv_is_a_matrix_product_over_channels():
    from nnprune.functional.conv_plain import conv2d_plain_forward

    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 4, 3, 5)), rng.standard_normal((6, 4, 1, 1))
    want = np.einsum("fc,nchw->nfhw", w[:, :, 0, 0], x)
    assert np.allclose(conv2d_plain_forward(x, w)[0], want)
    assert np.allclose(conv2d_plain_forward(x, w, padding=1)[0][:, :, 1:-1, 1:-1], want)
