"""Hypothesis strategies shared by the test suite: shapes, arrays, sparsities, conv geometries.

Each topic adds its strategies in its own section below; tests import them from here.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

# ---------------------------------------------------------------- shapes and arrays


def shapes(min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 5):
    """Array shapes with every side in [min_side, max_side]."""
    return hnp.array_shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side)


def arrays(shape, dtype=np.float64, low: float = -3.0, high: float = 3.0):
    """Finite float arrays of ``shape`` (a tuple or a strategy) with values in [low, high]."""
    return hnp.arrays(
        dtype,
        shape,
        elements=st.floats(low, high, allow_nan=False, allow_infinity=False, width=64),
    )


sparsities = st.floats(0.0, 1.0, allow_nan=False)
seeds = st.integers(0, 2**32 - 1)

# ---------------------------------------------------------------- autograd ops (one table of ops)


@st.composite
def broadcast_pair(draw):
    """Two arrays whose shapes broadcast together (e.g. (3, 1) with (2, 1, 4))."""
    drawn = draw(hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3))
    return tuple(draw(arrays(s)) for s in drawn.input_shapes)


def one_array(shape=None):
    """A 1-tuple holding one array of ``shape`` (a strategy; default 0..3 dims, sides ≤ 3)."""
    return st.tuples(arrays(shape or shapes(min_dims=0, max_dims=3, max_side=3)))


@st.composite
def matmul_pair(draw):
    """(n, k) @ (k, m), a 1-D operand on one side, a batched (b, n, k) @ (k, m) or (k,), and
    (k,) @ (b, k, m). (1-D @ 1-D is left to its own test.)"""
    n, k, m, b = (draw(st.integers(1, 3)) for _ in range(4))
    left = draw(st.sampled_from([(n, k), (k,), (b, n, k)]))
    right = draw(st.sampled_from([(k, m), (b, k, m)] if left == (k,) else [(k, m), (k,)]))
    return draw(arrays(left)), draw(arrays(right))


def reduction_axes(ndim: int):
    """An ``axis`` argument for an array of ``ndim`` dims: None, an int (negative too) or a
    tuple of distinct axes."""
    return st.one_of(st.none(), st.integers(-ndim, ndim - 1),
                     st.lists(st.integers(0, ndim - 1), min_size=1, unique=True).map(tuple))


@st.composite
def reduction_case(draw):
    """An array and an axis (None, an int or a tuple) plus keepdims."""
    a = draw(arrays(shapes(min_dims=1, max_dims=3, max_side=3)))
    return a, draw(reduction_axes(a.ndim)), draw(st.booleans())


@st.composite
def max_case(draw):
    """Distinct values (one maximum per slice) and an axis (None, an int or a tuple)."""
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=3))
    a = np.array(draw(st.permutations(range(int(np.prod(shape)))))).reshape(shape) / 3.0
    return a, draw(reduction_axes(a.ndim)), draw(st.booleans())


@st.composite
def reshape_case(draw):
    """An array and a shape it can take: (-1,), (1, -1), (-1, 1) or its shape reversed."""
    a = draw(arrays(shapes(min_dims=1, max_dims=3, max_side=4)))
    return a, draw(st.sampled_from([(-1,), (1, -1), (-1, 1), a.shape[::-1]]))


@st.composite
def transpose_case(draw):
    """An array and a permutation of its axes."""
    a = draw(arrays(shapes(min_dims=1, max_dims=3, max_side=3)))
    return a, tuple(draw(st.permutations(range(a.ndim))))


@st.composite
def getitem_case(draw):
    """Basic slices, and integer arrays with repeated indices (whose gradients add up)."""
    a = draw(arrays(shapes(min_dims=1, max_dims=3, max_side=4)))
    if draw(st.booleans()):
        index = tuple(slice(draw(st.integers(0, n - 1)), None, draw(st.integers(1, 2)))
                      for n in a.shape)
    else:
        index = np.array(draw(st.lists(st.integers(0, a.shape[0] - 1), min_size=1,
                                       max_size=5)))
    return a, index

# ---------------------------------------------------------------- cost accounting (count)


@st.composite
def conv_geometries(draw, max_channels: int = 3, max_kernel: int = 4, max_extra: int = 8):
    """Conv2d geometries whose output is at least 1×1: non-square kernels, unequal H and W,
    stride, padding and dilation pairs. A dict of Conv2d arguments plus ``c, h, w``."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
    dilation = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    # the smallest input side that still fits one dilated kernel: d·(k − 1) + 1 − 2·p
    low = [max(1, d * (k - 1) + 1 - 2 * p) for k, p, d in zip(kernel, padding, dilation)]
    h, w = (draw(st.integers(lo, lo + max_extra)) for lo in low)
    return {"c": draw(st.integers(1, max_channels)), "f": draw(st.integers(1, max_channels)),
            "h": h, "w": w, "kernel_size": kernel, "stride": stride, "padding": padding,
            "dilation": dilation}


@st.composite
def pool_geometries(draw, max_kernel: int = 3, max_extra: int = 6):
    """MaxPool2d/AvgPool2d geometries (padding at most half the kernel) with ``h, w`` that fit."""
    kernel = (draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple(draw(st.integers(0, k // 2)) for k in kernel)
    h, w = (draw(st.integers(max(1, k - 2 * p), max(1, k - 2 * p) + max_extra))
            for k, p in zip(kernel, padding))
    return {"h": h, "w": w, "kernel_size": kernel, "stride": stride, "padding": padding}

# ---------------------------------------------------------------- data: IDX files and labels

IDX_DTYPES = (np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64)


@st.composite
def idx_arrays(draw, max_dims: int = 4, max_side: int = 4):
    """Arrays an IDX file can hold: one of its six dtypes (any value, NaN and ±inf included),
    1..max_dims dimensions, sides 0..max_side (empty arrays too)."""
    dtype = draw(st.sampled_from(IDX_DTYPES))
    shape = draw(hnp.array_shapes(min_dims=1, max_dims=max_dims, min_side=0, max_side=max_side))
    return draw(hnp.arrays(dtype, shape))


@st.composite
def label_arrays(draw, max_classes: int = 6, max_per_class: int = 12):
    """1-D int64 label arrays with 2..max_classes classes of 1..max_per_class samples each,
    in a drawn order."""
    counts = draw(st.lists(st.integers(1, max_per_class), min_size=2, max_size=max_classes))
    y = np.repeat(np.arange(len(counts), dtype=np.int64), counts)
    return y[draw(st.permutations(range(len(y))))]

# ---------------------------------------------------------------- experiment records (reports, plots)

ACCURACIES = st.integers(0, 359).map(lambda k: k / 359)  # what a 359-image test split can give


@st.composite
def pruning_records(draw, models=("mlp", "cnn"), criteria=("magnitude", "random", "taylor"),
                    scopes=("global", "layer"), max_sparsities: int = 4, finetuned=None):
    """Records of a full sweep (every model × scope × criterion × sparsity once), as
    ``nnprune.experiment.report`` expects them: accuracies on a 359-image test split, one
    dense accuracy per model, ``accuracy_after_finetune`` None when ``finetuned`` is False
    (drawn per run when it is None)."""
    chosen = draw(st.lists(st.sampled_from([0.5, 0.7, 0.8, 0.9, 0.95]), min_size=1,
                           max_size=max_sparsities, unique=True))
    records = []
    for model in models:
        dense = draw(ACCURACIES)
        for scope in scopes:
            for criterion in criteria:
                for s in chosen:
                    tuned = finetuned if finetuned is not None else draw(st.booleans())
                    params = draw(st.integers(100, 10**6))
                    records.append({
                        "model": model, "dataset": "digits", "criterion": criterion,
                        "scope": scope, "granularity": "weight", "schedule": "oneshot",
                        "sparsity": s, "sparsity_reached": s, "finetune_epochs": 2 if tuned else 0,
                        "accuracy_dense": dense, "accuracy_before_finetune": draw(ACCURACIES),
                        "accuracy_after_finetune": draw(ACCURACIES) if tuned else None,
                        "params": params, "nonzero_params": int(round(params * (1 - s))),
                        "macs": 10 * params, "effective_macs": int(round(10 * params * (1 - s))),
                        "seed": 0})
    return records

# ---------------------------------------------------------------- pruning core (nnprune.prune)


@st.composite
def distinct_scores(draw, shape, dtype=np.float64):
    """Scores of ``shape`` with no ties: a drawn permutation of 0..n−1 (so a top-k is one
    threshold and a ranking is unambiguous)."""
    n = int(np.prod(shape))
    return np.array(draw(st.permutations(range(n))), dtype=dtype).reshape(shape)


def tied_scores(shape, levels: int = 3):
    """Scores of ``shape`` taking only ``levels`` values 0..levels−1: many ties."""
    return hnp.arrays(np.float64, shape, elements=st.integers(0, levels - 1).map(float))


def binary_masks(shape):
    """0./1. float masks of ``shape`` (any pattern, all-zero and all-one included)."""
    return hnp.arrays(np.float64, shape, elements=st.sampled_from([0.0, 1.0]))


@st.composite
def layer_shapes(draw, min_layers: int = 1, max_layers: int = 4, max_dims: int = 3,
                 max_side: int = 5):
    """{name: shape} for 1..max_layers tensors named "l0", "l1", ... in that order."""
    count = draw(st.integers(min_layers, max_layers))
    return {f"l{i}": draw(shapes(max_dims=max_dims, max_side=max_side)) for i in range(count)}


@st.composite
def distinct_score_dicts(draw, **layer_kw):
    """{name: scores} whose values are distinct across *all* tensors (one permutation cut into
    pieces), for global-ranking properties that need no ties."""
    layout = draw(layer_shapes(**layer_kw))
    total = sum(int(np.prod(s)) for s in layout.values())
    flat = np.array(draw(st.permutations(range(total))), dtype=np.float64)
    scores, start = {}, 0
    for name, shape in layout.items():
        size = int(np.prod(shape))
        scores[name] = flat[start:start + size].reshape(shape)
        start += size
    return scores


@st.composite
def weight_shapes(draw, conv: bool | None = None, in_multiple: int = 1, max_side: int = 4):
    """A linear (O, I) or conv (O, I, kh, kw) weight shape (non-square kernels), I a multiple
    of ``in_multiple``; ``conv`` None draws either."""
    conv = draw(st.booleans()) if conv is None else conv
    out = draw(st.integers(1, max_side))
    inputs = in_multiple * draw(st.integers(1, max(1, max_side // in_multiple + 1)))
    if not conv:
        return (out, inputs)
    return (out, inputs, draw(st.integers(1, 3)), draw(st.integers(1, 3)))


nm_patterns = st.sampled_from([(1, 1), (1, 2), (2, 4), (1, 4), (3, 4), (4, 4), (2, 8)])
group_granularities = st.sampled_from(["kernel", "filter", "channel", "neuron"])


@st.composite
def mask_dicts(draw):
    """({name: 0/1 mask} for up to 5 tensors, a drawn list of excluded names)."""
    layout = draw(layer_shapes(max_layers=5))
    masks = {name: draw(binary_masks(shape)) for name, shape in layout.items()}
    excluded = draw(st.lists(st.sampled_from(list(masks)), unique=True))
    return masks, excluded


@st.composite
def weights_and_grads(draw):
    """({name: w}, {name: g}) of the same shapes, with at least one non-zero product w·g."""
    layout = draw(layer_shapes())
    w = {name: draw(arrays(shape)) for name, shape in layout.items()}
    g = {name: draw(arrays(shape)) for name, shape in layout.items()}
    first = next(iter(layout))
    w[first].flat[0], g[first].flat[0] = 1.5, -0.5  # Σ|w·g| > 0
    return w, g


@st.composite
def tied_score_dicts(draw, **layer_kw):
    """{name: scores} with many ties within and across tensors."""
    layout = draw(layer_shapes(**layer_kw))
    return {name: draw(tied_scores(shape)) for name, shape in layout.items()}


@st.composite
def scores_with_masks(draw):
    """({name: tied scores}, {name: existing 0/1 mask} for a drawn subset of the names)."""
    scores = draw(tied_score_dicts())
    names = draw(st.lists(st.sampled_from(list(scores)), unique=True))
    return scores, {name: draw(binary_masks(scores[name].shape)) for name in names}

# ---------------------------------------------------------------- sparsity schedules

rising_sparsities = st.tuples(sparsities, sparsities).map(sorted)  # (s_i, s_f), s_i ≤ s_f
schedule_steps = st.tuples(st.integers(0, 50), st.integers(1, 30), st.integers(1, 6))  # t0, n, Δt
# (s_i, s_f, t0, n, Δt, power) of a Zhu–Gupta schedule, s_i ≤ 0.5 ≤ s_f
zhu_gupta_schedules = st.tuples(st.floats(0, 0.5), st.floats(0.5, 1.0), st.integers(0, 20),
                                st.integers(1, 12), st.integers(1, 5), st.sampled_from([1, 2, 3]))

# ---------------------------------------------------------------- functional kernels (conv, pool)


@st.composite
def conv_cases(draw, max_batch: int = 2, max_channels: int = 3, max_kernel: int = 3,
               max_extra: int = 4):
    """Small conv2d problems for the kernel tests: a ``conv_geometries`` draw (non-square
    kernels, H ≠ W, stride, padding and dilation pairs, output at least 1×1) plus a batch
    size ``n`` (1 included) and a ``seed`` for the arrays, small enough for the naive loops."""
    geometry = draw(conv_geometries(max_channels=max_channels, max_kernel=max_kernel,
                                    max_extra=max_extra))
    return {**geometry, "n": draw(st.integers(1, max_batch)), "seed": draw(st.integers(0, 2**16))}


@st.composite
def pool_cases(draw, max_batch: int = 2, max_channels: int = 2):
    """A ``pool_geometries`` draw plus batch ``n``, channels ``c`` and a ``seed``."""
    geometry = draw(pool_geometries())
    return {**geometry, "n": draw(st.integers(1, max_batch)),
            "c": draw(st.integers(1, max_channels)), "seed": draw(st.integers(0, 2**16))}


@st.composite
def classification_problems(draw, low: float = -5.0, high: float = 5.0):
    """(logits (N, K) in [low, high], integer targets (N,) in 0..K−1), N and K in 1..5."""
    n, k = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    logits = draw(arrays((n, k), low=low, high=high))
    target = np.array(draw(st.lists(st.integers(0, k - 1), min_size=n, max_size=n)))
    return logits, target


# (N, C) with N ≥ 2, or (N, C, H, W) with W ≥ 2: a batch-norm input with more than one value
batch_norm_shapes = st.one_of(
    st.tuples(st.integers(2, 5), st.integers(1, 3)),
    st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3), st.integers(2, 3)))

# ---------------------------------------------------------------- structured surgery


@st.composite
def surgery_nets(draw, max_channels: int = 4):
    """A small float64 conv net as ``{"layers": [layer configs], "input_shape": (C, H, W)}``:
    one or two blocks [conv (non-square kernel, stride, padding 0/1, with or without bias)
    → BatchNorm2d? → ReLU/Tanh/Dropout? → MaxPool2d/AvgPool2d (padding 0/1)?], then Flatten
    → BatchNorm1d? → Linear → BatchNorm1d? → ReLU? → Linear. Every map is at least 1×1."""
    from nnprune.count.rules import conv_output_size

    input_shape = (draw(st.integers(1, 3)), draw(st.integers(3, 9)), draw(st.integers(3, 9)))
    shape, layers = input_shape, []

    def norm(kind: str, n: int) -> dict:
        return {"type": kind, "num_features": n, "eps": 1e-5, "momentum": 0.1,
                "affine": draw(st.booleans()), "dtype": "float64"}

    for _ in range(draw(st.integers(1, 2))):
        c, h, w = shape
        f = draw(st.integers(1, max_channels))
        kernel = [draw(st.integers(1, min(3, h))), draw(st.integers(1, min(3, w)))]
        stride = [draw(st.integers(1, 2)), draw(st.integers(1, 2))]
        padding = [draw(st.integers(0, 1)), draw(st.integers(0, 1))]
        layers.append({"type": "Conv2d", "in_channels": c, "out_channels": f,
                       "kernel_size": kernel, "stride": stride, "padding": padding,
                       "dilation": [1, 1], "bias": draw(st.booleans()), "dtype": "float64"})
        h, w = (conv_output_size(n, k, s, p, 1) for n, k, s, p in zip((h, w), kernel, stride,
                                                                       padding))
        if draw(st.booleans()):
            layers.append(norm("BatchNorm2d", f))
        act = draw(st.sampled_from([None, "ReLU", "Tanh", "Dropout"]))
        if act is not None:
            layers.append({"type": act} if act != "Dropout" else {"type": act, "p": 0.5})
        pool = draw(st.sampled_from([None, "MaxPool2d", "AvgPool2d"]))
        if pool is not None and h >= 2 and w >= 2:
            pad = [draw(st.integers(0, 1)), draw(st.integers(0, 1))]
            layers.append({"type": pool, "kernel_size": [2, 2], "stride": [2, 2],
                           "padding": pad})
            h, w = (h + 2 * pad[0] - 2) // 2 + 1, (w + 2 * pad[1] - 2) // 2 + 1
        shape = (f, h, w)
    features = int(np.prod(shape))
    layers.append({"type": "Flatten"})
    if draw(st.booleans()):
        layers.append(norm("BatchNorm1d", features))
    hidden = draw(st.integers(1, max_channels + 2))
    layers.append({"type": "Linear", "in_features": features, "out_features": hidden,
                   "bias": draw(st.booleans()), "dtype": "float64"})
    if draw(st.booleans()):
        layers.append(norm("BatchNorm1d", hidden))
    if draw(st.booleans()):
        layers.append({"type": "ReLU"})
    layers.append({"type": "Linear", "in_features": hidden, "out_features": 3, "bias": True,
                   "dtype": "float64"})
    return {"layers": layers, "input_shape": input_shape}


def randomize(model, seed):
    """Every parameter N(0, 0.5²), running means N(0, 0.3²), running variances in [0.5, 2]:
    a model whose every unit matters, in eval mode."""
    rng = np.random.default_rng(seed)
    for _, p in model.named_parameters():
        p.data[...] = 0.5 * rng.standard_normal(p.shape)
    for name, b in model.named_buffers():
        b[...] = rng.uniform(0.5, 2.0, b.shape) if name.endswith("var") else \
            0.3 * rng.standard_normal(b.shape)
    return model.eval()


# the benchmark models at test size: name -> (build_model keywords, input shape (C, H, W))
BENCHMARK_CASES = {
    "lenet_300_100": ({}, (1, 8, 8)),
    "lenet5": ({}, (1, 8, 8)),
    "simple_cnn": ({}, (1, 8, 8)),
    "vgg16": ({"width": 0.125}, (3, 32, 32)),
}


def benchmark_model(name: str, seed: int = 0, dtype=np.float64):
    """``models.build_model(name)`` at its ``BENCHMARK_CASES`` size, built and then
    ``randomize``d from ``seed``, in eval mode."""
    from nnprune import models

    kwargs, (c, h, w) = BENCHMARK_CASES[name]
    return randomize(models.build_model(name, in_channels=c, input_size=(h, w), seed=seed,
                                        dtype=dtype, **kwargs), seed)


@st.composite
def surgery_models(draw):
    """A ``surgery_nets`` draw built, its values ``randomize``d from a drawn seed:
    (model, input shape)."""
    from nnprune import nn

    spec = draw(surgery_nets())
    model = randomize(nn.from_config({"type": "Sequential", "layers": spec["layers"]}),
                      draw(st.integers(0, 2**16)))
    return model, tuple(spec["input_shape"])


def weighted_layers(model) -> list[int]:
    """The indices of the Conv2d and Linear layers of a Sequential."""
    from nnprune import nn

    return [i for i, layer in enumerate(model) if isinstance(layer, (nn.Conv2d, nn.Linear))]


@st.composite
def net_and_cut(draw):
    """A ``surgery_models`` draw, one of its producers (not the output layer) and a non-empty
    keep: (model, input shape, producer index, kept unit indices)."""
    model, input_shape = draw(surgery_models())
    p = draw(st.sampled_from(weighted_layers(model)[:-1]))
    n = model[p].weight.shape[0]
    chosen = draw(st.lists(st.booleans(), min_size=n, max_size=n).filter(any))
    return model, input_shape, p, np.flatnonzero(chosen)


@st.composite
def dead_unit_nets(draw, output_layer: bool = True, whole: bool = False):
    """A ``surgery_models`` draw with a drawn set of dead units (possibly none, possibly all) in
    every Conv2d / Linear (the output layer too when ``output_layer``), attached as filter
    masks; with ``whole`` then ``mask_units`` (biases and BatchNorm outputs of dead units
    masked too). Returns (model, input shape)."""
    from nnprune.prune import attach_masks, mask_units

    model, input_shape = draw(surgery_models())
    layers = weighted_layers(model)
    masks = {}
    for i in layers if output_layer else layers[:-1]:
        w = model[i].weight
        alive = np.array(draw(st.lists(st.booleans(), min_size=w.shape[0],
                                       max_size=w.shape[0])))
        masks[f"{i}.weight"] = np.ones(w.shape) * alive.reshape(-1, *[1] * (w.ndim - 1))
    attach_masks(model, masks)
    if whole:
        mask_units(model)
    return model, input_shape

# ---------------------------------------------------------------- initialisation (nn.init)


@st.composite
def layer_weight_shapes(draw, max_fan_in: int = 400, max_out: int = 64):
    """Weight shapes of a Linear (out, in) or a Conv2d (out, in, kh, kw) layer, non-square
    kernels included, with fan_in = in·kh·kw at most ``max_fan_in``."""
    out = draw(st.integers(1, max_out))
    if draw(st.booleans()):
        return (out, draw(st.integers(1, max_fan_in)))
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    return (out, draw(st.integers(1, max(1, max_fan_in // (kh * kw)))), kh, kw)


# ---------------------------------------------------------------- interop (state dicts in and out)


@st.composite
def renamed_mlp_states(draw, min_layers: int = 2, max_layers: int = 5):
    """(widths, names, order): an MLP's distinct layer widths (so every Linear has its own
    weight shape), a foreign module name per Linear, and the order the source lists them in."""
    widths = draw(st.lists(st.integers(1, 12), min_size=min_layers + 1,
                           max_size=max_layers + 1, unique=True))
    n = len(widths) - 1
    names = draw(st.lists(st.from_regex(r"[a-z]{1,6}(\.[a-z0-9]{1,3})?", fullmatch=True),
                          min_size=n, max_size=n, unique=True))
    order = draw(st.permutations(range(n)))
    return widths, names, order

# ---------------------------------------------------------------- filter criteria


@st.composite
def filter_banks(draw, min_filters: int = 2, max_filters: int = 6, conv: bool | None = None):
    """A layer's weight (F, C, kh, kw) or (F, C) with F in [min_filters, max_filters], float64."""
    conv = draw(st.booleans()) if conv is None else conv
    f = draw(st.integers(min_filters, max_filters))
    shape = (f, draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))) \
        if conv else (f, draw(st.integers(1, 6)))
    return draw(arrays(shape))

# ---------------------------------------------------------------- residual nets


@st.composite
def residual_nets(draw, max_channels: int = 4):
    """A small float64 residual net as a description (build it with ``residual_config``): a
    stem conv (k×k, padding k//2, bias?, BatchNorm2d?) → ReLU, one to three blocks
    [conv 3×3 (stride 1/2) → BN? → ReLU → conv 3×3 → BN?] + (identity, or conv 1×1 (stride)
    → BN? where the width or size changes, or by choice) → ReLU, then (a global AvgPool2d?)
    → Flatten → Linear(·, 3). ``maps`` lists the (H, W) after the stem and each block."""
    c, h, w = draw(st.integers(1, 2)), draw(st.integers(2, 6)), draw(st.integers(2, 6))
    stem = {"out": draw(st.integers(1, max_channels)), "k": draw(st.sampled_from([1, 3])),
            "bias": draw(st.booleans()), "bn": draw(st.booleans())}
    blocks, width, maps = [], stem["out"], [(h, w)]
    for _ in range(draw(st.integers(1, 3))):
        stride = draw(st.sampled_from([1, 2]))
        out = draw(st.integers(1, max_channels))
        proj = stride != 1 or out != width or draw(st.booleans())
        blocks.append({"mid": draw(st.integers(1, max_channels)), "out": out if proj else width,
                       "stride": stride, "proj": proj, "bn": draw(st.booleans()),
                       "bias": draw(st.booleans())})
        width = blocks[-1]["out"]
        h, w = (h - 1) // stride + 1, (w - 1) // stride + 1
        maps.append((h, w))
    return {"input_shape": (c, *maps[0]), "stem": stem, "blocks": blocks, "maps": maps,
            "pool": draw(st.booleans())}


def residual_config(net, widths=None):
    """The ``nn.from_config`` spec of a ``residual_nets`` description; ``widths`` =
    {"stem": n, (b, "mid"): n, (b, "out"): n} overrides the channel counts (tied ones must
    agree: block b's "out" with the stream it adds to)."""
    widths = widths or {}
    conv = lambda i, o, k, s, p, b: {"type": "Conv2d", "in_channels": i, "out_channels": o,
                                     "kernel_size": [k, k], "stride": [s, s], "padding": [p, p],
                                     "dilation": [1, 1], "bias": b, "dtype": "float64"}
    bn = lambda n: {"type": "BatchNorm2d", "num_features": n, "eps": 1e-5, "momentum": 0.1,
                    "affine": True, "dtype": "float64"}
    stem = net["stem"]
    c = widths.get("stem", stem["out"])
    layers = [conv(net["input_shape"][0], c, stem["k"], 1, stem["k"] // 2, stem["bias"])]
    layers += [bn(c)] if stem["bn"] else []
    layers.append({"type": "ReLU"})
    for b, block in enumerate(net["blocks"]):
        mid, out = widths.get((b, "mid"), block["mid"]), widths.get((b, "out"), block["out"])
        body = [conv(c, mid, 3, block["stride"], 1, block["bias"])] + (
            [bn(mid)] if block["bn"] else []) + [{"type": "ReLU"},
                                                 conv(mid, out, 3, 1, 1, block["bias"])] + (
            [bn(out)] if block["bn"] else [])
        shortcut = None
        if block["proj"]:
            shortcut = {"type": "Sequential", "layers": [conv(c, out, 1, block["stride"], 0,
                                                              block["bias"])]
                        + ([bn(out)] if block["bn"] else [])}
        layers += [{"type": "Residual", "body": {"type": "Sequential", "layers": body},
                    "shortcut": shortcut}, {"type": "ReLU"}]
        c = out
    h, w = net["maps"][-1]
    if net["pool"]:
        layers.append({"type": "AvgPool2d", "kernel_size": [h, w], "stride": [h, w],
                       "padding": [0, 0]})
        h = w = 1
    layers += [{"type": "Flatten"}, {"type": "Linear", "in_features": c * h * w,
                                     "out_features": 3, "bias": True, "dtype": "float64"}]
    return {"type": "Sequential", "layers": layers}



# ---------------------------------------------------------------- Winograd conv (3×3, stride 1)


@st.composite
def winograd_cases(draw, max_batch: int = 2, max_channels: int = 3, max_side: int = 9):
    """3×3 stride-1 conv problems for the Winograd kernels: batch ``n`` (1 included), channels
    ``c`` and filters ``f`` from 1, H ≠ W allowed, sides odd and even (partial output tiles
    for both m = 2 and m = 4), padding 0–2 per axis with the padded input at least 3×3, the
    tile ``m`` (2 or 4), ``bias`` on or off and a ``seed``."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    h = draw(st.integers(max(1, 3 - 2 * ph), max_side))
    w = draw(st.integers(max(1, 3 - 2 * pw), max_side))
    return {"n": draw(st.integers(1, max_batch)), "c": draw(st.integers(1, max_channels)),
            "f": draw(st.integers(1, max_channels)), "h": h, "w": w, "padding": (ph, pw),
            "m": draw(st.sampled_from([2, 4])), "bias": draw(st.booleans()),
            "seed": draw(st.integers(0, 2**16))}


# ---------------------------------------------------------------- second order (OBC, curvature)


@st.composite
def layer_problems(draw, max_rows: int = 4, max_inputs: int = 7):
    """A layer-wise OBS problem: W (R, d), calibration inputs X (d, N) with N ≥ d + 2 (so
    H = 2XXᵀ/N is positive definite), drawn from a seed."""
    rows, d = draw(st.integers(1, max_rows)), draw(st.integers(1, max_inputs))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((d, d + 2 + draw(st.integers(0, 10))))
    return rng.standard_normal((rows, d)), x


@st.composite
def curvature_nets(draw, piecewise_linear: bool | None = None):
    """A small float64 chain and its input shape: an optional conv block (Conv2d with a
    non-square kernel, stride and padding, an activation, max- or avg-pool), then Flatten,
    one or two Linear layers with activations, and a Linear output of K classes.
    ``piecewise_linear`` True: ReLU only; False: Tanh somewhere; None: either."""
    from nnprune import nn

    acts = (["relu"] if piecewise_linear else ["tanh"] if piecewise_linear is False
            else ["relu", "tanh"])
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    layers, shape = [], (draw(st.integers(1, 2)), draw(st.integers(4, 6)), draw(st.integers(4, 7)))

    def act():
        return nn.ReLU() if draw(st.sampled_from(acts)) == "relu" else nn.Tanh()

    features = int(np.prod(shape))
    if draw(st.booleans()):
        c, h, w = shape
        f, kh, kw = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        stride, pad = draw(st.integers(1, 2)), draw(st.integers(0, 1))
        layers += [nn.Conv2d(c, f, (kh, kw), stride=stride, padding=pad, rng=rng,
                             dtype=np.float64), act()]
        oh, ow = (h + 2 * pad - kh) // stride + 1, (w + 2 * pad - kw) // stride + 1
        if oh >= 2 and ow >= 2:
            layers.append(nn.MaxPool2d(2) if draw(st.booleans()) else nn.AvgPool2d(2))
            oh, ow = oh // 2, ow // 2
        features = f * oh * ow
    layers.append(nn.Flatten())
    for _ in range(draw(st.integers(1, 2))):
        width = draw(st.integers(1, 5))
        layers += [nn.Linear(features, width, rng=rng, dtype=np.float64), act()]
        features = width
    k = draw(st.integers(2, 4))
    layers.append(nn.Linear(features, k, rng=rng, dtype=np.float64))
    model = nn.Sequential(*layers)
    if piecewise_linear is False and not any(isinstance(m, nn.Tanh) for m in layers):
        model = nn.Sequential(*layers[:-1], nn.Tanh(), layers[-1])
    for name, p in model.named_parameters():  # biases off 0: no ReLU sits on its kink
        if name.endswith("bias"):
            p.data[...] = rng.uniform(0.1, 0.5, p.shape) * rng.choice([-1.0, 1.0], p.shape)
    return model, shape, k, seed


# ---------------------------------------------------------------------- hostile model files
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 10**12) | st.floats(allow_nan=True)
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                max_size=3),
    max_leaves=6)

ODD_DTYPES = st.sampled_from([np.complex64, np.complex128, np.int32, np.int8, np.bool_,
                              np.float16, np.float64, np.float32, "U3", "S4", "V8"])


@st.composite
def file_mutations(draw):
    """One change to a valid model file, as ("bytes", list of (offset fraction, byte)) or
    ("truncate", fraction), ("spec", layer fraction, key, JSON value),
    ("metadata", key, JSON value), ("shape", entry fraction, new shape),
    ("dtype", entry fraction, dtype) or ("header", entry fraction, claimed shape)."""
    kind = draw(st.sampled_from(["bytes", "truncate", "spec", "metadata", "shape", "dtype",
                                 "header"]))
    where = draw(st.floats(0, 1, exclude_max=True))
    if kind == "bytes":
        return kind, draw(st.lists(st.tuples(st.floats(0, 1, exclude_max=True),
                                             st.integers(0, 255)), min_size=1, max_size=4))
    if kind == "truncate":
        return kind, where
    if kind == "spec":
        key = draw(st.sampled_from(["type", "in_features", "out_features", "bias", "dtype",
                                    "kernel_size", "stride", "padding", "in_channels",
                                    "out_channels", "num_features", "eps", "momentum",
                                    "affine", "layers", "p", "body", "shortcut", "extra"]))
        return kind, where, key, draw(JSON_VALUES)
    if kind == "metadata":
        return kind, draw(st.text(max_size=5)), draw(JSON_VALUES)
    if kind == "shape":
        return kind, where, tuple(draw(st.lists(st.integers(0, 5), max_size=4)))
    if kind == "dtype":
        return kind, where, draw(ODD_DTYPES)
    return kind, where, tuple(draw(st.lists(st.integers(0, 10**12), min_size=1, max_size=3)))
