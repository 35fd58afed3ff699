"""conv2d kernels: the plain im2col reference and the tuned im2col/col2im kernel in each
layout equal the seven loops, their backward equals central differences, and every bad
argument is refused with a clear error."""
import functools
from concurrent.futures import ThreadPoolExecutor
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conv_kernels import assert_all_equal_the_loops
from gradcheck import check_vjp
from strategies import conv_cases

from nnprune.functional import conv as conv_module
from nnprune.functional import im2col as im2col_module
from nnprune.functional import naive
from nnprune.functional.conv import conv2d_backward, conv2d_forward, conv_output_size
from nnprune.functional.conv_plain import conv2d_plain_backward, conv2d_plain_forward
from nnprune.functional.im2col import LAYOUTS, interior, pad_images

pytestmark = pytest.mark.kernels

GEOMETRY = ("stride", "padding", "dilation")


def arrays_for(case, bias=True, dtype=np.float64):
    rng = np.random.default_rng(case["seed"])
    (kh, kw), c, f = case["kernel_size"], case["c"], case["f"]
    x = rng.standard_normal((case["n"], c, case["h"], case["w"])).astype(dtype)
    w = rng.standard_normal((f, c, kh, kw)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype) if bias else None
    return x, w, b


@given(case=conv_cases(), bias=st.booleans())
def test_every_conv_equals_the_seven_loops(case, bias):
    """The plain im2col reference and the tuned im2col in each layout (and Winograd when the
    draw is 3×3 at stride 1) equal the plain loops to 1e-10 in float64, forward and backward,
    on non-square kernels, H ≠ W, stride > 1, padding > 0, dilation > 1 and batch 1."""
    x, w, b = arrays_for(case, bias)
    ran = assert_all_equal_the_loops(x, w, b, *(case[k] for k in GEOMETRY))
    assert {"plain", *(f"im2col {layout}" for layout in LAYOUTS)} <= set(ran)


@pytest.mark.parametrize("block", [1, 2, 3])
@settings(max_examples=20)
@given(case=conv_cases(max_batch=3))
def test_channels_first_gemm_in_blocks_of_filters_equals_the_loops(block, case):
    """Channels-first's forward GEMM runs over FILTER_BLOCK filters at a time: with blocks
    of 1, 2 and 3 (so that most draws make several, the last one short) the output still
    equals the seven loops (float64, 1e-10)."""
    x, w, b = arrays_for(case)
    geometry = [case[k] for k in GEOMETRY]
    with mock.patch.object(conv_module, "FILTER_BLOCK", block):
        out = conv2d_forward(x, w, b, *geometry, layout="channels_first")[0]
    np.testing.assert_allclose(out, naive.conv2d_naive_forward(x, w, b, *geometry)[0],
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("layout", [*LAYOUTS, "plain"])
@settings(max_examples=15)
@given(case=conv_cases(max_batch=2, max_channels=2, max_kernel=2, max_extra=2))
def test_conv2d_backward_equals_central_differences(layout, case):
    """dx, dw, db are the vector-Jacobian product of the forward with a random dout (the
    tuned kernel in each layout, and the plain reference)."""
    x, w, b = arrays_for(case)
    geometry = [case[k] for k in GEOMETRY]
    if layout == "plain":
        forward, backward = conv2d_plain_forward, conv2d_plain_backward
    else:
        forward, backward = functools.partial(conv2d_forward, layout=layout), conv2d_backward
    out, cache = forward(x, w, b, *geometry)
    dout = np.random.default_rng(1).standard_normal(out.shape)

    def conv2d(x, w, b):
        return forward(x, w, b, *geometry)[0]

    check_vjp(conv2d, (x, w, b), backward(dout, cache), dout,
              arg_names=("x", "weight", "bias"))


def test_the_default_layout_follows_the_shape():
    """channels-first for C < 8 at P ≥ 256; channels-last from C = 64, and from C = 32 at
    P ≥ 256; batch-last in between."""
    layout = conv_module.default_layout
    assert [layout(7, 256), layout(8, 256), layout(31, 256), layout(32, 256)] == [
        "channels_first", "batch_last", "batch_last", "channels_last"]
    assert [layout(1, 255), layout(63, 255), layout(64, 255), layout(64, 4096)] == [
        "batch_last", "batch_last", "channels_last", "channels_last"]
    x16 = np.zeros((1, 3, 18, 18))
    assert conv2d_forward(x16, np.zeros((1, 3, 3, 3)))[1].geometry.layout == "channels_first"
    x8 = np.zeros((1, 3, 10, 10))
    assert conv2d_forward(x8, np.zeros((1, 3, 3, 3)))[1].geometry.layout == "batch_last"


@pytest.mark.parametrize("layout", LAYOUTS)
def test_float32_agrees_with_the_float64_loops(layout):
    """The float32 result agrees with the float64 loops to float32 accuracy and stays
    float32, forward and backward."""
    rng = np.random.default_rng(0)
    x, w, b = (rng.standard_normal((2, 32, 5, 4)), rng.standard_normal((3, 32, 3, 2)),
               rng.standard_normal(3))
    out, cache = conv2d_forward(x.astype(np.float32), w.astype(np.float32),
                                b.astype(np.float32), 2, 1, 1, layout=layout)
    assert cache.geometry.layout == layout and out.dtype == np.float32
    ref, ref_cache = naive.conv2d_naive_forward(x, w, b, 2, 1, 1)
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-4)
    dout = rng.standard_normal(out.shape)
    for got, expected in zip(conv2d_backward(dout.astype(np.float32), cache),
                             naive.conv2d_naive_backward(dout, ref_cache)):
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunk", [1, 2])
@settings(max_examples=20)
@given(case=conv_cases(max_batch=3))
def test_chunks_of_the_batch_give_the_whole_batch_result(layout, chunk, case):
    """Processing the batch in chunks of 1 or 2 images (bands of 1 or 2 output rows for
    batch-last, whose bands overlap in the input), a shorter last chunk included, changes
    nothing."""
    x, w, b = arrays_for(case)
    geometry = [case[k] for k in GEOMETRY]
    whole, cache = conv2d_forward(x, w, b, *geometry, layout=layout)
    dout = np.random.default_rng(2).standard_normal(whole.shape)
    expected = conv2d_backward(dout, cache)
    with mock.patch.object(conv_module, "_chunk_size", lambda g, f: chunk):
        out, cache = conv2d_forward(x, w, b, *geometry, layout=layout)
        got = conv2d_backward(dout, cache)
    np.testing.assert_allclose(out, whole, rtol=1e-12, atol=1e-12)
    for a, e in zip(got, expected):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_results_do_not_share_memory_between_calls(layout):
    """The scratch arrays kept from call to call never leak: an earlier out, dx and dw keep
    their values after a later forward and backward of the same shapes."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3))
    out, cache = conv2d_forward(x, w, None, 1, 1, layout=layout)
    dx1, dw1, _ = conv2d_backward(np.ones_like(out), cache)
    saved = out.copy(), dx1.copy(), dw1.copy()
    out2, cache2 = conv2d_forward(-x, w, None, 1, 1, layout=layout)
    conv2d_backward(-5 * np.ones_like(out), cache2)
    for got, expected in zip((out, dx1, dw1), saved):
        assert not np.may_share_memory(got, out2)
        np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("chunk", [1, 100])
def test_a_cache_survives_a_later_forward(layout, chunk):
    """Two forwards, then the first one's backward: it equals the backward run right after
    its own forward, whether the cache kept cols (one chunk) or rebuilds them from xp."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal((3, 3, 6, 5)), rng.standard_normal((3, 3, 6, 5))
    w = rng.standard_normal((4, 3, 3, 2))
    with mock.patch.object(conv_module, "_chunk_size", lambda g, f: chunk):
        out, cache = conv2d_forward(x1, w, None, 1, 1, layout=layout)
        assert (cache.cols is None) == (chunk == 1)
        dout = rng.standard_normal(out.shape)
        expected = conv2d_backward(dout, cache)
        conv2d_forward(x2, w, None, 1, 1, layout=layout)
        for got, want in zip(conv2d_backward(dout, cache)[:2], expected[:2]):
            np.testing.assert_array_equal(got, want)


def test_scratch_is_kept_per_thread():
    """Two threads convolving at once each get the single-thread result (the scratch arrays
    are one set per thread)."""
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal((4, 3, 9, 9)) for _ in range(2)]
    w = rng.standard_normal((5, 3, 3, 3))

    def run(x):
        out, cache = conv2d_forward(x, w, None, 1, 1, layout="batch_last")
        return (out, *conv2d_backward(out, cache)[:2])

    expected = [run(x) for x in inputs]
    with ThreadPoolExecutor(2) as pool:
        for _ in range(5):
            for got, want in zip(pool.map(run, inputs), expected):
                for a, e in zip(got, want):
                    np.testing.assert_array_equal(a, e)


def test_need_dx_false_skips_the_input_gradient():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((1, 2, 5, 5)), rng.standard_normal((3, 2, 3, 3))
    out, cache = conv2d_forward(x, w, None)
    dx, dw, db = conv2d_backward(np.ones_like(out), cache, need_dx=False)
    assert dx is None and db is None
    np.testing.assert_allclose(dw, conv2d_backward(np.ones_like(out), cache)[1])


def test_mixed_dtypes_are_promoted():
    x = np.ones((1, 1, 3, 3), np.float32)
    out, cache = conv2d_forward(x, np.ones((1, 1, 2, 2)), None)
    assert out.dtype == np.float64
    assert conv2d_backward(np.ones_like(out), cache)[0].dtype == np.float64


def test_output_size_formula():
    """OH = ⌊(H + 2p − d(k − 1) − 1)/s⌋ + 1, worked by hand for one case per term."""
    assert conv_output_size(7, 9, (3, 2), (2, 3), (1, 0), (2, 1)) == (3, 3)
    assert conv_output_size(5, 5, (5, 5), (1, 1), (0, 0), (1, 1)) == (1, 1)


# ---------------------------------------------------------------------- bad input
X, W = np.zeros((2, 3, 5, 5)), np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize("kwargs, match", [
    ({"x": np.zeros((3, 5, 5))}, "x must be 4-D"),
    ({"w": np.zeros((4, 3, 3))}, "weight must be 4-D"),
    ({"w": np.zeros((4, 2, 3, 3))}, "x has 3 channels but weight expects 2"),
    ({"w": np.zeros((4, 3, 6, 1))}, "larger than the padded input"),
    ({"w": np.zeros((4, 3, 3, 3)), "dilation": 3}, "larger than the padded input"),
    ({"x": np.zeros((0, 3, 5, 5))}, "no empty axis"),
    ({"b": np.zeros(3)}, r"bias must have shape \(4,\)"),
    ({"stride": 0}, "stride must be an int >= 1"),
    ({"stride": (1, -2)}, "stride must be an int >= 1"),
    ({"stride": 1.5}, "stride must be an int >= 1"),
    ({"padding": -1}, "padding must be an int >= 0"),
    ({"padding": (1, 2, 3)}, "padding must be an int >= 0"),
    ({"dilation": 0}, "dilation must be an int >= 1"),
    ({"layout": "nhwc"}, "layout must be one of"),
])
def test_bad_arguments_raise_value_error(kwargs, match):
    """The tuned kernel and the plain reference refuse the same input with the same words."""
    args = {"x": X, "w": W, "b": None, **kwargs}
    with pytest.raises(ValueError, match=match):
        conv2d_forward(**args)
    if "layout" not in kwargs:
        with pytest.raises(ValueError, match=match):
            conv2d_plain_forward(**args)


@pytest.mark.parametrize("kwargs, match", [
    ({"x": np.zeros((2, 3, 5, 5), np.int64)}, "x must be a float32 or float64"),
    ({"w": np.zeros((4, 3, 3, 3), bool)}, "weight must be a float32 or float64"),
    ({"b": [0.0] * 4}, "bias must be a float32 or float64"),
])
def test_non_float_arrays_raise_type_error(kwargs, match):
    args = {"x": X, "w": W, "b": None, **kwargs}
    for forward in (conv2d_forward, conv2d_plain_forward):
        with pytest.raises(TypeError, match=match):
            forward(**args)


@given(c_x=st.integers(1, 4), c_w=st.integers(1, 4))
def test_any_channel_mismatch_is_refused(c_x, c_w):
    """Whenever x's C differs from weight's C the call fails, and never otherwise."""
    x, w = np.zeros((1, c_x, 4, 4)), np.zeros((2, c_w, 3, 3))
    if c_x == c_w:
        assert conv2d_forward(x, w)[0].shape == (1, 2, 2, 2)
    else:
        with pytest.raises(ValueError, match="channels"):
            conv2d_forward(x, w)


def test_backward_refuses_a_dout_of_the_wrong_shape():
    out, cache = conv2d_forward(X, W)
    with pytest.raises(ValueError, match="dout must have the output's shape"):
        conv2d_backward(np.ones((2, 4, 3, 4)), cache)


@pytest.mark.parametrize("layout", LAYOUTS)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 5),
                       st.integers(1, 5)),
       padding=st.tuples(st.integers(0, 3), st.integers(0, 3)))
def test_padded_images_equal_np_pad(layout, shape, padding):
    """pad_images fills only the frame with zeros, so leftovers of reused memory must not
    show: its result equals np.pad, relaid out to NHWC for channels-last and to CHWN for
    batch-last; ``interior`` gives back x in NCHW order."""
    np.full(10_000, np.nan)  # leave some garbage behind in the allocator
    x = np.random.default_rng(0).standard_normal(shape)
    expected = np.pad(x, ((0, 0), (0, 0), (padding[0],) * 2, (padding[1],) * 2))
    expected = expected.transpose({"channels_first": (0, 1, 2, 3), "channels_last": (0, 2, 3, 1),
                                   "batch_last": (1, 2, 3, 0)}[layout])
    xp = pad_images(x, padding, layout)
    np.testing.assert_array_equal(xp, expected)
    np.testing.assert_array_equal(interior(xp, padding, layout), x)


_RELAID = {"into batch-last": ((1, 2, 3, 0), (3, 0, 1, 2), True),
           "out of batch-last": ((0, 1, 2, 3), None, True),
           "into channels-last": ((0, 2, 3, 1), (0, 3, 1, 2), False),
           "channels-first": ((0, 1, 2, 3), None, False)}


@pytest.mark.parametrize("direction", _RELAID)
@given(shape=st.tuples(st.integers(1, 9), st.integers(1, 9), st.integers(1, 4),
                       st.integers(1, 4)),
       rows=st.integers(1, 10))
def test_copy_relaid_in_slabs_equals_one_copy(direction, shape, rows):
    """Whatever slab size rows_in_l1 gives, copy_relaid copies every value once, in every
    direction it is used in (into and out of batch-last, into channels-last, NCHW)."""
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    order, back, batch_last = _RELAID[direction]
    dst = np.full(tuple(shape[i] for i in order), np.nan, np.float32)
    dst = dst if back is None else dst.transpose(back)
    src = x
    if direction == "out of batch-last":  # x held batch-last, copied into NCHW
        src = np.empty(tuple(shape[i] for i in (1, 2, 3, 0)), np.float32).transpose(3, 0, 1, 2)
        src[...] = x
    with mock.patch.object(im2col_module, "rows_in_l1", lambda step: rows):
        im2col_module.copy_relaid(dst, src, batch_last)
    np.testing.assert_array_equal(dst, x)


_DTYPES = (np.float32, np.float64, np.int8, np.int16, np.complex64)


@given(shape=st.lists(st.integers(0, 5), min_size=1, max_size=4),
       order=st.randoms(use_true_random=False), dtype=st.sampled_from(_DTYPES),
       step=st.sampled_from([1, 2, -1]))
def test_copy_runs_equals_copyto_bit_for_bit(shape, order, dtype, step):
    """copy_runs copies every value, bit for bit (NaNs of any payload, -0.0), whether the
    last axes are contiguous (runs moved as void elements), strided or reversed (a plain
    copy), into a destination whose other axes are transposed."""
    rng = np.random.default_rng(len(shape))
    bits = rng.integers(0, 256, (*shape[:-1], shape[-1] * abs(step) * np.dtype(dtype).itemsize),
                        dtype=np.uint8)
    src = bits.view(dtype)[..., ::step]
    axes = list(range(len(shape) - 1))
    order.shuffle(axes)
    buffer = np.zeros(tuple(shape[i] for i in axes) + (shape[-1],), dtype)
    dst = buffer.transpose(*np.argsort(axes), len(shape) - 1)
    im2col_module.copy_runs(dst, src)
    assert dst.tobytes() == np.ascontiguousarray(src).tobytes()


def test_copy_runs_moves_whole_runs_when_both_last_axes_are_contiguous():
    """The 4×4 tiles of a Winograd output go as 16-byte elements: one copyto of void arrays."""
    tiles = np.arange(2 * 3 * 4 * 4, dtype=np.float32).reshape(2, 3, 4, 4)
    out = np.empty((3, 2, 4, 4), np.float32).transpose(1, 0, 2, 3)
    with mock.patch.object(np, "copyto", wraps=np.copyto) as copyto:
        im2col_module.copy_runs(out, tiles)
    (dst, src), _ = copyto.call_args
    assert dst.dtype == src.dtype == np.dtype("V16") and dst.shape == (2, 3, 4, 1)
    np.testing.assert_array_equal(out, tiles)


@pytest.mark.parametrize("step, rows", [(4096, 8), (8192, 8), (2048, 16), (6144, 16),
                                        (1024, 32), (256, 128), (3456, 256), (100, 1 << 30)])
def test_rows_in_l1_counts_the_sets_a_step_reaches(step, rows):
    """Rows a multiple of 4 KB apart share one of the 64 sets (8 ways: 8 rows); 3,456 bytes
    (54 lines) reach 32 sets; a step that is not whole lines spreads over all of them."""
    assert im2col_module.rows_in_l1(step) == rows
    assert im2col_module.rows_in_l1(-step) == rows


def test_lenet_conv2_dout_goes_into_batch_last_in_slabs_of_8_images():
    """(64, 16, 8, 8) float32: images 4 KB apart, so the copy runs in 8 slabs, and still
    equals the array it copies."""
    dout = np.random.default_rng(1).standard_normal((64, 16, 8, 8)).astype(np.float32)
    dst = np.empty((16, 8, 8, 64), np.float32).transpose(3, 0, 1, 2)
    with mock.patch.object(np, "copyto", wraps=np.copyto) as copyto:
        im2col_module.copy_relaid(dst, dout, batch_last=True)
    assert copyto.call_count == 8
    np.testing.assert_array_equal(dst, dout)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 40), st.integers(1, 40)),
       caller=st.sampled_from([16, 8192, 100_000]))
def test_col2im_buffer_is_one_block_row_and_restored(shape, caller):
    """Inside _ufunc_buffer, NumPy's ufunc buffer holds the block's last two axes (rounded up
    to a multiple of 16) if they hold at least MIN_BUFFER values, else the caller's size
    stays; on exit, also by an exception, the caller's size is back."""
    previous = np.setbufsize(caller)
    try:
        with pytest.raises(RuntimeError, match="inside"):
            with im2col_module._ufunc_buffer(np.empty(shape)):
                size = np.getbufsize()
                raise RuntimeError("inside")
        assert np.getbufsize() == caller
    finally:
        np.setbufsize(previous)
    row = shape[1] * shape[2]
    if row < im2col_module.MIN_BUFFER:
        assert size == caller
    else:
        assert size % 16 == 0 and row <= size < row + 16


@pytest.mark.parametrize("layout", LAYOUTS)
@settings(max_examples=20)
@given(case=conv_cases(), caller=st.sampled_from([16, 48, 65536]))
def test_col2im_with_its_buffer_on_every_block_equals_the_naive_twin(layout, case, caller):
    """With MIN_BUFFER lowered so that col2im sets the ufunc buffer for every block (the
    drawn problems are too small to reach 128 values a row), the gradients still equal the
    plain loops on drawn geometries (stride, padding, dilation, non-square kernels, batch 1),
    and the caller's buffer size is unchanged afterwards."""
    x, w, b = arrays_for(case)
    geometry = [case[k] for k in GEOMETRY]
    out, cache = conv2d_forward(x, w, b, *geometry, layout=layout)
    ref_cache = naive.conv2d_naive_forward(x, w, b, *geometry)[1]
    dout = np.random.default_rng(case["seed"] + 1).standard_normal(out.shape)
    previous = np.setbufsize(caller)
    try:
        with mock.patch.object(im2col_module, "MIN_BUFFER", 1):
            got = conv2d_backward(dout, cache)
        assert np.getbufsize() == caller
    finally:
        np.setbufsize(previous)
    expected = naive.conv2d_naive_backward(dout, ref_cache)
    for name, g, e in zip(("dx", "dw", "db"), got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("length, itemsize, step", [(4096, 4, 4112), (256, 4, 272),
                                                    (128, 8, 136), (100, 4, 100),
                                                    (300, 8, 300)])
def test_row_step_adds_a_cache_line_to_rows_of_whole_kilobytes(length, itemsize, step):
    assert im2col_module.row_step(length, itemsize) == step


@pytest.mark.parametrize("x_shape, w_shape", [((2, 2, 10, 10), (3, 2, 3, 3)),
                                              ((2, 2, 10, 18), (4, 2, 3, 3))])
def test_spaced_gemm_rows_change_no_result(x_shape, w_shape):
    """Shapes whose GEMM rows are whole kilobytes (128 float64 values: cols and dcols of
    batch-last and channels-first, out_t and dout_t, Winograd's V and M), so every kernel
    runs with rows a cache line apart, and all still equal the seven loops."""
    rng = np.random.default_rng(3)
    x, w, b = (rng.standard_normal(s) for s in (x_shape, w_shape, w_shape[:1]))
    ran = assert_all_equal_the_loops(x, w, b, (1, 1), (0, 0), (1, 1))
    assert len(ran) == 6  # plain, the three layouts, Winograd F(2×2) and F(4×4)
    cache = conv2d_forward(x, w, b, layout="batch_last" if x_shape[3] == 10
                           else "channels_first")[1]
    rows = cache.cols if cache.cols.ndim == 2 else cache.cols[0]
    assert rows.strides[0] == (128 + 8) * 8  # one 64-byte line more than the row
