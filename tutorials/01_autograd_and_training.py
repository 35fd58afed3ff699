# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 01 — Tensors, gradients and a first network
#
# Everything nnprune prunes is trained by a small engine you can read in an afternoon:
# a `Tensor` that remembers how it was computed, a backward pass that applies the chain rule
# in reverse, NumPy kernels for convolution and pooling, and `fit`. This tutorial walks
# through each piece and checks it, the way the test suite does.
#
# Run it as a script (`python tutorials/01_autograd_and_training.py`) or open it as a notebook
# with jupytext. Set `NNPRUNE_FAST=1` for a quick run.

# %%
import os
import time

import numpy as np

import nnprune
from nnprune import Tensor
from nnprune import functional as F

FAST = os.environ.get("NNPRUNE_FAST") == "1"

# %% [markdown]
# ## 1. A Tensor and its gradient
#
# `y = x * x` uses `x` twice. The backward pass must *add* both contributions:
# dy/dx = x + x = 2x. Gradients are accumulated, never overwritten.

# %%
x = Tensor([1.0, -2.0, 3.0], requires_grad=True)
y = (x * x).sum()
y.backward()
print("x.grad =", x.grad)  # 2x
assert np.allclose(x.grad, 2 * x.data)

# %% [markdown]
# ## 2. Checking a gradient by finite differences
#
# The central difference (f(w + h) − f(w − h)) / 2h approximates a derivative with an error
# of order h². In float64 it agrees with the backward pass to about 1e-8 — this is how every
# op in nnprune is tested.

# %%
rng = np.random.default_rng(0)
w = Tensor(rng.standard_normal((3, 4)), requires_grad=True, dtype=np.float64)
inputs = Tensor(rng.standard_normal((5, 4)), dtype=np.float64)


def loss_of(weight: Tensor) -> Tensor:
    return (inputs @ weight.T).tanh().sum()


loss_of(w).backward()
h, numeric = 1e-6, np.zeros_like(w.data)
for i in np.ndindex(w.shape):
    plus, minus = w.data.copy(), w.data.copy()
    plus[i] += h
    minus[i] -= h
    numeric[i] = (loss_of(Tensor(plus)).item() - loss_of(Tensor(minus)).item()) / (2 * h)
print("max |analytic − numeric| =", np.abs(w.grad - numeric).max())
assert np.allclose(w.grad, numeric, atol=1e-7)

# %% [markdown]
# ## 3. Convolution is a matrix product
#
# `conv2d` unfolds every receptive field of the input into a column (im2col); the
# convolution is then one matrix multiplication with the filters laid out as rows. The idea
# stands in three levels, and the tests hold all three equal: the seven loops of
# `functional/naive.py` (slow, obviously right), the plain im2col + one GEMM of
# `functional/conv_plain.py` (about forty lines, forward and backward: read this one), and
# the tuned layouts `F.conv2d` runs (`conv.py`, `im2col.py`), which only reorder the same work.

# %%
from nnprune.functional import conv_plain, naive  # noqa: E402

x_img = rng.standard_normal((2, 3, 7, 6))
weight = rng.standard_normal((4, 3, 3, 2))
fast = F.conv2d(Tensor(x_img, dtype=np.float64), Tensor(weight, dtype=np.float64),
                stride=2, padding=1).data
plain, _ = conv_plain.conv2d_plain_forward(x_img, weight, None, stride=2, padding=1)
slow, _ = naive.conv2d_naive_forward(x_img, weight, None, stride=2, padding=1, dilation=1)
print("output shape:", fast.shape, " max difference to the loops:",
      np.abs(fast - slow).max(), "(tuned)", np.abs(plain - slow).max(), "(plain)")
assert np.allclose(fast, slow) and np.allclose(plain, slow)

# %% [markdown]
# ## 3b. Winograd: the same 3×3 convolution with fewer multiplications
#
# im2col spends 9 multiplications per output and input channel on a 3×3 kernel. Winograd's
# minimal filtering (Lavin & Gray 2016) computes m outputs of a 3-tap correlation from
# α = m + 2 inputs with only α products: y = Aᵀ [(G g) ⊙ (Bᵀ d)]. The three matrices
# evaluate two polynomials at α points, multiply pointwise and interpolate back. In one
# dimension, F(2, 3) gives 2 outputs with 4 multiplications where the direct way needs 6:

# %%
from nnprune.functional.winograd_transforms import transform_matrices  # noqa: E402

bt, g_mat, at = transform_matrices(2)  # Bᵀ (4, 4), G (4, 3), Aᵀ (2, 4)
d, g = np.array([1.0, 2.0, -1.0, 3.0]), np.array([0.5, -1.0, 2.0])
products = (g_mat @ g) * (bt @ d)  # the only 4 multiplications that touch the data
print("Winograd F(2, 3):", at @ products, " direct:", np.correlate(d, g, mode="valid"))
assert np.allclose(at @ products, np.correlate(d, g, mode="valid"))

# %% [markdown]
# Nested in both directions, F(m×m, 3×3) turns a layer into α² matrix products over all
# tiles and channels: 2.25× fewer multiplications for F(2×2, 3×3), 4× for F(4×4, 3×3).
# `F.conv2d(..., algorithm=...)` runs either one (or im2col); "auto" picks F(4×4) where
# `nnprune bench conv` measured it faster (16 channels and more). The price is rounding:
# F(4×4)'s matrices hold 4, 5 and 1/24, so in float32 it strays further from the exact
# result than F(2×2), whose entries are 0, ±1/2 and ±1. A 64→128 layer on 32 images of
# 16×16 (4 of 8×8 in the fast mode), each algorithm's best of three runs:

# %%
n_img, side = (4, 8) if FAST else (32, 16)
x64 = rng.standard_normal((n_img, 64, side, side))
w64 = rng.standard_normal((128, 64, 3, 3)) / 24.0
exact = F.conv2d(Tensor(x64, dtype=np.float64), Tensor(w64, dtype=np.float64), padding=1,
                 algorithm="im2col").data
tiles = n_img * (side // 2) ** 2  # 2×2 output tiles; the 4×4 ones are a quarter as many
macs = {"im2col": exact.size * 64 * 9, "winograd2": 16 * tiles * 64 * 128,
        "winograd4": 36 * (tiles // 4) * 64 * 128}
x32, w32 = Tensor(x64, dtype=np.float32), Tensor(w64, dtype=np.float32)
for algorithm, count in macs.items():
    seconds = []
    for _ in range(3):
        started = time.perf_counter()
        out32 = F.conv2d(x32, w32, padding=1, algorithm=algorithm).data
        seconds.append(time.perf_counter() - started)
    error = np.abs(out32 - exact).max() / np.abs(exact).max()
    print(f"{algorithm:>9}: {count / 1e6:6.1f} M multiplications, float32 error {error:.1e}, "
          f"{1e3 * min(seconds):.1f} ms")
    assert error < (1e-5 if algorithm == "winograd4" else 1e-6)
assert macs["im2col"] == 4 * macs["winograd4"]

# %% [markdown]
# ## 4. A model, an optimizer, and training on real digits
#
# nnprune ships 1,797 real 8×8 handwritten digits (UCI optdigits), so this runs offline. The small CNN
# has two conv + pool blocks and an MLP head; `fit` shows a progress bar per epoch. The recipe —
# SGD with momentum, a little weight decay and a cosine learning-rate decay — reaches about
# 98 % test accuracy in 30 epochs (98.1 % for seed 0: one run, one seed). Those 30 epochs
# take well under a minute on 2 cores (39 s measured on a shared machine); the cell prints
# its own time. With `NNPRUNE_FAST=1` it trains 3 epochs and only checks that the network
# learns.

# %%
from nnprune import models  # noqa: E402
from nnprune.data import digits  # noqa: E402
from nnprune.optim import SGD, CosineAnnealingLR  # noqa: E402
from nnprune.train import evaluate, fit  # noqa: E402

data = digits(seed=0)
model = models.simple_cnn(in_channels=1, num_classes=10, input_size=8, seed=0)
print(model)
print("parameters:", sum(p.size for p in model.parameters()))
epochs = 3 if FAST else 30
optimizer = SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
started = time.perf_counter()
history = fit(model, (data.x_train, data.y_train), optimizer, epochs=epochs, batch_size=16,
              seed=0, scheduler=CosineAnnealingLR(optimizer, T_max=epochs), quiet=FAST)
result = evaluate(model, (data.x_test, data.y_test))
print(f"test accuracy: {result['accuracy']:.3f} after {epochs} epochs "
      f"({time.perf_counter() - started:.0f} s, seed 0)")
assert result["accuracy"] > (0.5 if FAST else 0.975)

# %% [markdown]
# ## Summary
#
# - A `Tensor` records the op that made it; `backward()` walks the graph in reverse
#   topological order and *accumulates* gradients.
# - Every gradient can be checked against a central finite difference in float64.
# - `conv2d` is im2col followed by one matrix product; its naive loop twin proves it right.
# - Winograd's F(m×m, 3×3) trades multiplications (÷2.25 or ÷4) for transforms and a little
#   float32 accuracy; `algorithm=` chooses, "auto" follows the measurements.
# - The names are PyTorch's: `nn.Conv2d`, `SGD`, `loss.backward()`, `optimizer.step()`.
#
# ## Exercises
#
# 1. Build `z = x * y + x` and predict `x.grad` and `y.grad` before calling `backward()`.
# 2. Change the finite-difference step `h` to 1e-2 and 1e-10. Why does the error grow both ways?
# 3. Compare `F.conv2d` with the naive loop for stride 2, padding 2 and dilation 2 on a 9×5
#    input with a 3×2 kernel.
# 4. Train `models.lenet_300_100(in_channels=1, input_size=8)` with `Adam` and compare its
#    accuracy and parameter count with the CNN's.
# 5. Write F(2, 3)'s Bᵀ, G and Aᵀ from the points 0, 1, −1 and ∞ (Lagrange interpolation),
#    compare them with `transform_matrices(2)`, and count the additions the transforms cost.

# %%
print("nnprune", nnprune.__version__)
