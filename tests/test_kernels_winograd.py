"""Winograd conv2d: the transform matrices satisfy the minimal filtering identities exactly,
forward and both backward passes equal the seven loops and every other conv (float64) and
im2col (float32, within the stated tolerance), the automatic choice changes no result
beyond that tolerance, and bad arguments are refused with a clear error."""
from fractions import Fraction
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv_kernels import assert_all_equal_the_loops
from strategies import winograd_cases

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.functional import naive
from nnprune.functional import winograd as winograd_module
from nnprune.functional.conv import conv2d_backward, conv2d_forward
from nnprune.functional.conv_algorithms import conv_algorithm
from nnprune.functional.winograd import FLOAT32_TOLERANCE, winograd_backward, winograd_forward
from nnprune.functional.winograd_transforms import TRANSFORMS, filter_transform, transform_matrices
from nnprune.threads import even_slices

pytestmark = pytest.mark.kernels


def arrays_for(case, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n"], case["c"], case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((case["f"], case["c"], 3, 3)).astype(dtype)
    b = rng.standard_normal(case["f"]).astype(dtype) if case["bias"] else None
    return x, w, b


def exact(matrix):
    return [[Fraction(v) for v in row] for row in matrix]


def matmul(a, b):
    return [[sum((a[i][k] * b[k][j] for k in range(len(b))), Fraction(0))
             for j in range(len(b[0]))] for i in range(len(a))]


def transpose(a):
    return [list(row) for row in zip(*a)]


@pytest.mark.parametrize("m", sorted(TRANSFORMS))
@given(data=st.data())
def test_minimal_filtering_identities_hold_exactly(m, data):
    """With exact rational arithmetic on integer d and g: Aᵀ[(G g) ⊙ (Bᵀ d)] is the 1-D
    correlation y_i = Σ_k d_{i+k} g_k, and Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A the 2-D one."""
    bt, g_mat, at = (exact(mat) for mat in TRANSFORMS[m])
    alpha = m + 2
    assert (len(bt), len(bt[0]), len(g_mat), len(g_mat[0]), len(at), len(at[0])) == \
        (alpha, alpha, alpha, 3, m, alpha)
    ints = st.integers(-9, 9)
    d = [Fraction(v) for v in data.draw(st.lists(ints, min_size=alpha, max_size=alpha))]
    g = [Fraction(v) for v in data.draw(st.lists(ints, min_size=3, max_size=3))]
    gg = [r[0] for r in matmul(g_mat, [[v] for v in g])]
    bd = [r[0] for r in matmul(bt, [[v] for v in d])]
    y = [r[0] for r in matmul(at, [[u * v] for u, v in zip(gg, bd)])]
    assert y == [sum(d[i + k] * g[k] for k in range(3)) for i in range(m)]

    d2 = [[Fraction(v) for v in row] for row in data.draw(
        st.lists(st.lists(ints, min_size=alpha, max_size=alpha), min_size=alpha,
                 max_size=alpha))]
    g2 = [[Fraction(v) for v in row] for row in data.draw(
        st.lists(st.lists(ints, min_size=3, max_size=3), min_size=3, max_size=3))]
    u = matmul(matmul(g_mat, g2), transpose(g_mat))
    v = matmul(matmul(bt, d2), transpose(bt))
    y2 = matmul(matmul(at, [[a * b for a, b in zip(ur, vr)] for ur, vr in zip(u, v)]),
                transpose(at))
    assert y2 == [[sum(d2[i + k][j + l] * g2[k][l] for k in range(3) for l in range(3))
                   for j in range(m)] for i in range(m)]


@pytest.mark.parametrize("m", sorted(TRANSFORMS))
def test_float_matrices_are_the_exact_ones(m):
    """transform_matrices gives the rational tables as floats, in the documented shapes:
    exactly the three matrices Bᵀ, G, Aᵀ."""
    assert len(transform_matrices(m)) == 3
    for got, table in zip(transform_matrices(m), TRANSFORMS[m]):
        np.testing.assert_array_equal(got, np.array([[float(Fraction(v)) for v in row]
                                                     for row in table]))


@given(case=winograd_cases())
def test_winograd_equals_the_naive_loops_and_every_other_conv(case):
    """float64: forward, dx, dw and db of F(2×2, 3×3) and F(4×4, 3×3), the plain im2col
    reference and the tuned im2col in each layout all equal the seven loops to 1e-10 on
    batch 1, C and F from 1, odd sides (partial tiles), H ≠ W and padding 0–2."""
    x, w, b = arrays_for(case)
    ran = assert_all_equal_the_loops(x, w, b, (1, 1), case["padding"], (1, 1))
    assert {"plain", "winograd2", "winograd4"} <= set(ran) and len(ran) == 6


def scale_of(x, w, b, dout, padding):
    """max(|x| ⋆ |w| + |b|) and the same for dx and dw from |dout|: what a rounding error of
    float32 is relative to (FLOAT32_TOLERANCE)."""
    out, cache = conv2d_forward(np.abs(x), np.abs(w), None if b is None else np.abs(b), 1,
                                padding)
    dx, dw, _ = conv2d_backward(np.abs(dout), cache)
    return out.max(), dx.max(), dw.max()


def check_float32_close(x, w, b, padding, m, got_out, got_grads, dout):
    """got_* (float32, by Winograd) against float64 im2col, within FLOAT32_TOLERANCE[m]."""
    ref, cache = conv2d_forward(x, w, b, 1, padding)
    ref_dx, ref_dw, ref_db = conv2d_backward(dout, cache)
    tol = FLOAT32_TOLERANCE[m]
    for name, got, expected, scale in zip(("out", "dx", "dw"), (got_out, *got_grads[:2]),
                                          (ref, ref_dx, ref_dw),
                                          scale_of(x, w, b, dout, padding)):
        assert got.dtype == np.float32, name
        err = np.abs(got - expected).max()
        assert err <= tol * scale, f"{name}: error {err:.3g} > {tol} × scale {scale:.3g}"
    if b is not None:
        np.testing.assert_allclose(got_grads[2], ref_db, rtol=1e-5, atol=1e-5 * dout.size)


@settings(max_examples=30)
@given(case=winograd_cases(max_channels=8, max_side=13))
def test_winograd_float32_equals_im2col_within_the_stated_tolerance(case):
    """float32 Winograd is within FLOAT32_TOLERANCE[m] · max(|x| ⋆ |w| + |b|) of float64
    im2col (likewise dx, dw with |dout|): 1e-6 for F(2×2, 3×3), 1e-5 for F(4×4, 3×3)."""
    x, w, b = arrays_for(case)
    dout = np.random.default_rng(case["seed"] + 1).standard_normal(
        (case["n"], case["f"], case["h"] + 2 * case["padding"][0] - 2,
         case["w"] + 2 * case["padding"][1] - 2))
    f32 = [None if a is None else a.astype(np.float32) for a in (x, w, b, dout)]
    out, cache = winograd_forward(*f32[:3], case["padding"], m=case["m"])
    grads = winograd_backward(f32[3], cache)
    check_float32_close(x, w, b, case["padding"], case["m"], out, grads, dout)


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 2), c=st.integers(16, 24),
       side=st.integers(6, 10), padding=st.integers(0, 2))
def test_automatic_choice_changes_no_result_beyond_the_tolerance(seed, n, c, side, padding):
    """F.conv2d with algorithm="auto" (Winograd on these many-channel 3×3 layers) gives the
    output and gradients of im2col within the Winograd tolerance, in float32."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, side, side + 1))
    w, b = rng.standard_normal((c, c, 3, 3)), rng.standard_normal(c)
    chosen = conv_algorithm("auto", x.shape, w.shape, (1, 1), (1, 1), (padding, padding))
    assert chosen != "im2col"
    tensors = [Tensor(a.astype(np.float32), requires_grad=True) for a in (x, w, b)]
    out = F.conv2d(*tensors, padding=padding)
    dout = rng.standard_normal(out.shape)
    (out * Tensor(dout.astype(np.float32))).sum().backward()
    check_float32_close(x, w, b, (padding, padding), int(chosen[-1]), out.data,
                        [t.grad for t in tensors], dout)


def test_auto_keeps_im2col_where_winograd_cannot_run():
    """5×5 kernels, stride 2 and dilation 2 run im2col; so do few-channel 3×3 layers and
    outputs smaller than one 4×4 tile."""
    assert conv_algorithm("auto", (8, 64, 16, 16), (64, 64, 5, 5), (1, 1), (1, 1)) == "im2col"
    assert conv_algorithm("auto", (8, 64, 16, 16), (64, 64, 3, 3), (2, 2), (1, 1)) == "im2col"
    assert conv_algorithm("auto", (8, 64, 16, 16), (64, 64, 3, 3), (1, 1), (2, 2)) == "im2col"
    assert conv_algorithm("auto", (8, 3, 32, 32), (64, 3, 3, 3), (1, 1), (1, 1)) == "im2col"
    assert conv_algorithm("auto", (8, 64, 2, 2), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1)) == "im2col"
    assert conv_algorithm("auto", (8, 64, 4, 4), (64, 64, 3, 3), (1, 1), (1, 1), (1, 1)) \
        == "winograd4"


@pytest.mark.parametrize("algorithm", ["im2col", "winograd2", "winograd4"])
def test_forced_algorithm_runs_through_the_layer(algorithm):
    """nn.Conv2d(algorithm=...) reaches F.conv2d, survives config / from_config, and every
    algorithm gives the same output (float64)."""
    layer = nn.Conv2d(2, 3, 3, padding=1, algorithm=algorithm, rng=0, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((2, 2, 5, 6))
    rebuilt = nn.from_config(layer.config())
    assert rebuilt.algorithm == algorithm
    rebuilt.load_state_dict(layer.state_dict())
    expected = conv2d_forward(x, layer.weight.data, layer.bias.data, 1, 1)[0]
    np.testing.assert_allclose(rebuilt(x).data, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("call, match", [
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 5, 5)), algorithm="winograd2"),
     "3×3 kernels at stride 1"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2,
                      algorithm="winograd4"), "stride 1"),
    (lambda: F.conv2d(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), algorithm="fft"),
     "algorithm must be one of"),
    (lambda: nn.Conv2d(1, 1, 3, algorithm="winograd"), "algorithm must be one of"),
    (lambda: winograd_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), m=3),
     "m must be one of"),
    (lambda: winograd_forward(np.ones((1, 2, 5, 5)), np.ones((1, 1, 3, 3))), "channels"),
    (lambda: winograd_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 2))),
     r"weight must be \(F, C, 3, 3\)"),
    (lambda: winograd_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), np.ones(2)),
     r"bias must have shape \(1,\)"),
    (lambda: winograd_forward(np.ones((1, 1, 2, 2)), np.ones((1, 1, 3, 3))), "larger than"),
    (lambda: winograd_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)), padding=-1),
     "padding"),
    (lambda: winograd_backward(np.ones((1, 1, 2, 2)),
                               winograd_forward(np.ones((1, 1, 5, 5)), np.ones((1, 1, 3, 3)))[1]),
     "dout must have"),
    (lambda: transform_matrices(6), "m must be one of"),
])
def test_bad_arguments_are_refused(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_integer_input_is_refused_with_a_type_error():
    with pytest.raises(TypeError, match="x must be a float32 or float64"):
        winograd_forward(np.ones((1, 1, 5, 5), int), np.ones((1, 1, 3, 3)))


@settings(max_examples=10)
@given(case=winograd_cases(max_batch=4))
def test_chunks_of_one_image_give_the_same_result(case):
    """With chunks of one image (CHUNK_ELEMENTS = 1, and no floor of tiles per filter)
    forward and backward still equal the naive loops (float64): the chunks split the
    batch, nothing else."""
    x, w, b = arrays_for(case)
    with mock.patch.object(winograd_module, "CHUNK_ELEMENTS", 1), \
            mock.patch.object(winograd_module, "TILES_PER_FILTER", 0):
        out, cache = winograd_forward(x, w, b, case["padding"], m=case["m"])
        assert len(cache.v) == case["n"]
        dout = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
        fast = winograd_backward(dout, cache)
    ref, ref_cache = naive.conv2d_naive_forward(x, w, b, 1, case["padding"])
    np.testing.assert_allclose(out, ref, rtol=1e-10, atol=1e-10)
    for name, got, expected in zip(("dx", "dw", "db"), fast,
                                   naive.conv2d_naive_backward(dout, ref_cache)):
        if expected is not None:
            np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10, err_msg=name)


def test_spaced_rows_of_v_and_m_change_no_result():
    """x (4, 4, 8, 8), padding 1, m = 2: 16 tiles an image of 4 channels and of 4 filters,
    so chunks of 2 or 4 images have rows of V and M of whole kilobytes (float64), which lie
    a cache line apart; the results still equal the seven loops."""
    rng = np.random.default_rng(5)
    x, w, b = rng.standard_normal((4, 4, 8, 8)), rng.standard_normal((4, 4, 3, 3)), np.ones(4)
    assert_all_equal_the_loops(x, w, b, (1, 1), (1, 1), (1, 1))
    v = winograd_forward(x, w, b, 1, m=2)[1].v[0]  # (α², T, C) of the first chunk
    row = v.shape[1] * v.shape[2]
    assert row * 8 % 1024 == 0 and v.strides[0] == (row + 8) * 8


@pytest.mark.parametrize("n, f, side, size", [(64, 256, 8, 32), (64, 128, 16, 7), (5, 40, 4, 5),
                                              (8, 3, 8, 8)])
def test_a_chunk_holds_at_least_f_over_two_tiles(n, f, side, size):
    """VGG's 128→256 at 8×8 (4 tiles an image) gets chunks of 32 images, not the 14 that
    CHUNK_ELEMENTS alone allows; 64→128 at 16×16 keeps its cache-sized 7; a floor above
    the batch gives one chunk."""
    c = f // 2
    grid = winograd_module.tile_grid((n, c, side, side), (1, 1), 4)
    chunks = winograd_module._chunks(grid, f)
    assert max(s.stop - s.start for s in chunks) == size


@pytest.mark.parametrize("m", sorted(TRANSFORMS))
@given(f=st.integers(1, 9), c=st.integers(1, 9), workers=st.integers(1, 4))
def test_filter_transform_in_channel_parts_equals_it_in_one_piece(m, f, c, workers):
    """U computed part by part along C into slices of one array (as the chunk runner's
    threads compute it) equals U computed at once to float32 rounding (BLAS may round a
    narrower product differently), and both equal the float64 U; the parts cover C in
    order, their sizes within one of each other."""
    w = np.random.default_rng(f * 10 + c).standard_normal((f, c, 3, 3)).astype(np.float32)
    parts = even_slices(c, workers)
    assert [p.start for p in parts] == [0] + [p.stop for p in parts[:-1]] and parts[-1].stop == c
    assert len(parts) == min(c, workers)
    assert max(p.stop - p.start for p in parts) - min(p.stop - p.start for p in parts) <= 1
    u = np.full(((m + 2) ** 2, c, f), np.nan, np.float32)
    for p in parts:
        filter_transform(w[:, p], m, u[:, p])
    exact = filter_transform(w.astype(np.float64), m)
    for got in (u, filter_transform(w, m)):
        np.testing.assert_allclose(got, exact, rtol=0, atol=1e-6 * np.abs(exact).max())


@pytest.mark.parametrize("out, match", [
    (np.empty((16, 3, 2)), r"shape \(16, 2, 3\)"),                 # C and F swapped
    (np.empty((16, 2, 3), np.float32), "float64 array"),          # another dtype
    (np.empty((16, 3, 2)).transpose(0, 2, 1), "contiguous"),      # right shape, F not contiguous
])
def test_filter_transform_refuses_an_out_it_cannot_fill(out, match):
    with pytest.raises(ValueError, match=match):
        filter_transform(np.ones((3, 2, 3, 3)), 2, out)
