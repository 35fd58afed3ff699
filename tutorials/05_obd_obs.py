# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 05 — Second-order pruning: Optimal Brain Damage and Optimal Brain Surgeon
#
# Magnitude pruning assumes that a small weight matters little. LeCun et al. (1990) asked
# instead: *how much does the loss rise if this weight is deleted?* Near a trained minimum the
# gradient vanishes, and a second-order Taylor expansion answers it:
#
# $$\delta L \approx \tfrac12\, \delta w^\top H\, \delta w .$$
#
# - **OBD** keeps only the diagonal of the Hessian $H$: deleting $w_k$ costs
#   $s_k = \tfrac12 h_{kk} w_k^2$.
# - **OBS** (Hassibi & Stork 1993) also moves the surviving weights to compensate. The best
#   move is $\delta w = -\frac{w_q}{[H^{-1}]_{qq}} H^{-1} e_q$ and costs
#   $L_q = \tfrac12 \frac{w_q^2}{[H^{-1}]_{qq}}$.
#
# On a quadratic loss both formulas are *exact*, and this tutorial checks it on a real layer.
#
# Seeds: the data split and the layer come from seed 0; the losses are exact on that one
# run (one seed), and the agreements checked hold whatever the seed.

# %%
import os

import numpy as np

from nnprune import Tensor, nn
from nnprune import functional as F
from nnprune.curvature import hessian, hessian_diagonal
from nnprune.data import digits
from nnprune.prune.hessian import obd_saliency, obs_prune

FAST = os.environ.get("NNPRUNE_FAST") == "1"

# %% [markdown]
# ## 1. A layer whose loss is exactly quadratic
#
# A linear layer under the squared loss is quadratic in its weights. We regress "is this
# digit a 3?" from the 64 pixels of each digit, and solve least squares to sit exactly at the
# minimum. The model is float64, as second derivatives by finite differences need.

# %%
data = digits(seed=0, standardize=True)
x = data.x_train.reshape(len(data.x_train), -1).astype(np.float64)
y = (data.y_train == 3).astype(np.float64)[:, None]
# pixels that never vary (the corners) carry no information and make H singular: drop them
x = x[:, x.std(axis=0) > 1e-3 * x.std()]
n_in = x.shape[1]
print(f"{n_in} informative pixels of 64")

layer = nn.Linear(n_in, 1, dtype=np.float64)
solution = np.linalg.lstsq(np.hstack([x, np.ones((len(x), 1))]), y, rcond=None)[0]
layer.weight.data[...] = solution[:-1].T
layer.bias.data[...] = solution[-1]


def loss_fn(model):
    return F.mse_loss(model(Tensor(x)), Tensor(y))


base = loss_fn(layer).item()
print(f"loss at the minimum: {base:.5f}")

# %% [markdown]
# ## 2. The Hessian, by differences of gradients
#
# `nnprune.curvature` computes $Hv \approx (\nabla L(w + \epsilon v) - \nabla L(w - \epsilon v)) / 2\epsilon$.
# For this layer we know $H = \frac{2}{N} X^\top X$ — they agree.

# %%
H = hessian(layer, loss_fn, "weight")
print("max |H − 2XᵀX/N| =", np.abs(H - 2 * x.T @ x / len(x)).max())
assert np.allclose(H, 2 * x.T @ x / len(x), atol=1e-7)

# %% [markdown]
# ## 3. OBD's saliency is the true cost of deleting one weight
#
# At the minimum the gradient is zero and the loss is exactly quadratic, so deleting one
# weight $w_k$ raises the loss by exactly $\tfrac12 h_{kk} w_k^2$: predicted and measured agree
# to rounding, for the weights OBD would prune first and for the ones it would keep.

# %%
w = layer.weight.data.ravel().copy()
# solution
saliency = 0.5 * np.diag(H) * w * w  # OBD: s_k = ½ h_kk w_k²
# end solution

# %% tags=["check"]
# Check: deleting weight k alone raises the loss by saliency[k] (measured, not computed).
assert saliency.shape == w.shape
order = np.argsort(saliency)
for k in (*order[:2], order[n_in // 2], order[-1]):  # the two cheapest, a middle one, the dearest
    layer.weight.data[...] = np.where(np.arange(n_in) == k, 0.0, w)[None, :]
    measured = loss_fn(layer).item() - base
    print(f"weight {k:2d}: predicted {saliency[k]:.4e}   measured {measured:.4e}")
    assert np.isclose(measured, saliency[k], rtol=1e-5, atol=1e-12)
layer.weight.data[...] = w[None, :]

# %%
assert np.allclose(saliency, obd_saliency(w, np.diag(H)))  # the library agrees

# %% [markdown]
# ## 4. Magnitude vs OBD vs OBS at rising sparsity
#
# Magnitude and OBD delete weights and leave the rest alone; OBS deletes one at a time and
# re-fits the survivors. Compare the real loss increase.

# %%
from nnprune.prune import topk_mask  # noqa: E402

rows = []
for sparsity in ([0.5, 0.8] if FAST else [0.25, 0.5, 0.75, 0.9]):
    costs = {}
    for name, scores in (("magnitude", np.abs(w)), ("OBD", saliency)):
        keep = topk_mask(scores, sparsity)
        layer.weight.data[...] = (w * keep)[None, :]
        costs[name] = loss_fn(layer).item() - base
    new, _, predicted = obs_prune(w, H, sparsity)
    layer.weight.data[...] = new[None, :]
    costs["OBS"] = loss_fn(layer).item() - base
    assert abs(costs["OBS"] - predicted) < 1e-6 * max(1.0, predicted)
    rows.append((sparsity, costs))
    layer.weight.data[...] = w[None, :]

print("sparsity   magnitude        OBD        OBS   (loss increase)")
for sparsity, c in rows:
    print(f"{sparsity:8.2f} {c['magnitude']:11.5f} {c['OBD']:10.5f} {c['OBS']:10.5f}")
assert all(c["OBS"] <= c["OBD"] + 1e-9 for _, c in rows)

# %% [markdown]
# OBD need not beat magnitude here: its saliencies are exact one weight at a time, but when
# many weights go together the cross terms $h_{jk} w_j w_k$ it ignores add up, and on these
# correlated pixels they can make its choice the worse one (compare the two columns above).
# OBS accounts for them and moves the survivors, and its loss is the lowest at every sparsity.

# %%
assert all(c["OBS"] <= min(c["magnitude"], c["OBD"]) + 1e-9 for _, c in rows)

# %% [markdown]
# ## 5. For a real network: the Hessian diagonal by Hutchinson's estimator
#
# A network's Hessian is far too large to form. OBD needs only its diagonal, which
# Hutchinson's estimator gives from Hessian-vector products with random ±1 vectors:
# $\mathrm{diag}(H) = \mathbb{E}[z \odot Hz]$.

# %%
mlp = nn.Sequential(nn.Linear(n_in, 32, rng=0, dtype=np.float64), nn.Tanh(),
                    nn.Linear(32, 10, rng=1, dtype=np.float64))
labels = data.y_train  # one label per row of x


def ce(model):
    return F.cross_entropy(model(Tensor(x)), labels)


exact = hessian_diagonal(mlp, ce, ["2.weight"])["2.weight"]  # 320 Hessian-vector products
estimate = hessian_diagonal(mlp, ce, ["2.weight"], method="hutchinson",
                            samples=20 if FAST else 200, seed=0)["2.weight"]
r = np.corrcoef(exact.ravel(), estimate.ravel())[0, 1]
print(f"Hutchinson vs exact diag(H) of the last layer: correlation {r:.3f}")
assert r > 0.5

# %% [markdown]
# ## 6. A whole trained network: OBD with each diagonal, and OBS layer by layer
#
# Everything above used one layer whose loss is exactly quadratic. A trained LeNet-300-100 is
# not, and its Hessian has 50,000² entries on the digits. Two ways make second order scale:
#
# - **OBD needs only diag(H).** `nnprune.curvature_diag` computes it by *second-order
#   backpropagation*: the Gauss–Newton diagonal exactly (the columns of a factor of the
#   output Hessian run backwards, about two backward passes here), LeCun et al.'s own
#   recursion (one backward pass, no cross terms), or the empirical Fisher (squared
#   per-sample gradients); Hutchinson's estimator is the fourth. For a ReLU network the
#   Gauss–Newton diagonal *is* the Hessian's: the output is piecewise linear in each weight.
# - **OBS, one layer at a time** (Optimal Brain Compression, Frantar et al. 2022). Layer l
#   should keep its outputs: minimise ‖WX − ŴX‖² over its calibration inputs X. That loss is
#   quadratic in each row with the same Hessian H = 2XXᵀ/N for every row, so OBS is exact
#   within each row, as in section 4. Each layer sees the inputs of the already pruned
#   layers before it. SparseGPT does the same in one pass over the columns (fast, slightly
#   worse). A global target is spread over the layers by the rows' loss traces.
#
# All of them: one shot, global scope, **no fine-tuning**, from the same trained model.

# %%
import time  # noqa: E402

import matplotlib.pyplot as plt  # noqa: E402

from nnprune import models  # noqa: E402
from nnprune.curvature_diag import hessian_diagonals  # noqa: E402
from nnprune.experiment.runs import accuracy, clone_model, fit_model  # noqa: E402
from nnprune.experiment.second_order import calibration_data  # noqa: E402
from nnprune.prune import prune_model  # noqa: E402
from nnprune.prune.layerwise import ObsSettings  # noqa: E402

images = digits(seed=0)
net = models.lenet_300_100(in_channels=1, num_classes=10, input_size=8, seed=0)
fit_model(net, images, epochs=3 if FAST else 30, lr=0.05, weight_decay=1e-4, seed=0)
dense = accuracy(net, images)
print(f"dense LeNet-300-100 on the digits: {100 * dense:.1f}%")
x_cal, y_cal = calibration_data(images, batches=16, batch_size=64, seed=0)

diagonals, seconds = {}, {}
for kind in ("gauss-newton", "lecun", "fisher", "hutchinson"):
    start = time.perf_counter()
    diagonals[kind] = hessian_diagonals(net, x_cal, y_cal, kind, samples=10 if FAST else 100)
    seconds[kind] = time.perf_counter() - start
    print(f"diag(H) by {kind:<12} {seconds[kind]:6.2f} s")

levels = [0.5, 0.9] if FAST else [0.5, 0.7, 0.8, 0.9, 0.95, 0.98]
curves = {}
for s in levels:
    runs = {"magnitude": {}, **{f"OBD ({k})": {"hessian_diag": d} for k, d in diagonals.items()},
            "OBS (exact)": {"calibration": (x_cal, y_cal)},
            "SparseGPT": {"calibration": (x_cal, y_cal), "obs": ObsSettings(method="sparsegpt")}}
    for name, extra in runs.items():
        criterion = "magnitude" if name == "magnitude" else "obd" if "hessian_diag" in extra \
            else "obs"
        pruned = clone_model(net)
        prune_model(pruned, criterion, s, scope="global", **extra)
        curves.setdefault(name, []).append(accuracy(pruned, images))

print("sparsity " + " ".join(f"{name:>18}" for name in curves))
for i, s in enumerate(levels):
    print(f"{s:8.2f} " + " ".join(f"{100 * c[i]:17.1f}%" for c in curves.values()))

fig, ax = plt.subplots(figsize=(7, 4))
for name, accs in curves.items():
    ax.plot(levels, [100 * a for a in accs], marker="o", label=name,
            linestyle="-" if "OBS" in name or "Sparse" in name else "--")
ax.axhline(100 * dense, color="gray", linewidth=0.8)
ax.set(xlabel="sparsity (global, one shot, no fine-tuning)", ylabel="test accuracy (%)",
       title="LeNet-300-100 on the digits")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig("05_second_order_accuracy.png", dpi=100)

# %% [markdown]
# Layer-wise OBS keeps the accuracy far longer than deleting weights and leaving the rest as
# they were: every deletion is paid for by the kept weights of its row, and every layer makes
# up for the errors of the layers before it. OBD ranks better than magnitude where the
# curvature differs between weights of similar size, but it compensates nothing.

# %%
if not FAST:
    i90 = levels.index(0.9)
    assert curves["OBS (exact)"][i90] >= curves["magnitude"][i90]

# %% [markdown]
# ## Summary
#
# - OBD's saliency ½ h_kk w_k² is exact for a single deletion at a quadratic minimum; it
#   ignores the cross terms of H when several weights go.
# - OBS compensates with the inverse Hessian and is exact on a quadratic: its predicted cost is
#   the measured one, and never more than OBD's for the same deletions.
# - Second derivatives come from differences of gradients in float64; the diagonal of a large
#   Hessian from Hutchinson's estimator, or exactly (Gauss–Newton) by second-order
#   backpropagation at the cost of a few backward passes.
# - Layer-wise OBS (OBC) is exact per row of a layer, compensates with the kept weights, and
#   pruned one shot without fine-tuning it keeps a network's accuracy far beyond magnitude.
#
# ## Exercises
#
# 1. Delete two weights at once with OBD and compare the predicted and measured costs. Which
#    entry of H explains the difference?
# 2. Implement `obs_prune` yourself from `obs_update` and compare with the library's.
# 3. How many Hutchinson samples does the estimate of `diag(H)` need to be within 10 %?
# 4. Prune the MLP of section 6 with OBS at `scope="layer"` (the same ratio in every layer)
#    and compare with the global target at 90 %. Which layer loses most?
