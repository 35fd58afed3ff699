# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 02 — Magnitude pruning and masks
#
# To prune a weight is to fix it at zero for good. A pruned weight tensor is the product
# $w \odot m$ of the weights and a **mask** $m$ of the same shape, with $m_j = 1$ (keep) or
# $m_j = 0$ (pruned). Its **sparsity** is the fraction of zeros,
#
# $$s = \frac{\#\{j : m_j = 0\}}{n}.$$
#
# Three decisions make a pruning method:
#
# 1. a **score** $\sigma_j$ per weight — higher means more important, kept;
# 2. a **rule** that turns scores into a mask — a threshold, a percentile, or exactly the
#    $k$ lowest scores;
# 3. a **scope** — each layer pruned to the same sparsity, or one ranking over all layers.
#
# Han et al. (2015, "Learning both Weights and Connections for Efficient Neural Networks")
# made the simplest choice famous: train, remove the weights of smallest magnitude, then
# retrain the survivors. This tutorial builds that method piece by piece and measures it on
# real handwritten digits.
#
# Run it as a script or open it as a notebook with jupytext; `NNPRUNE_FAST=1` runs a quick
# version. Section 4 has the line to edit to try another criterion.
#
# Seeds: every accuracy here is one run at seed 0 (one seed stands behind each number, no
# error bars); tutorial 06 repeats its comparisons over several seeds and prints mean ± std.

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from nnprune import models
from nnprune.data import digits
from nnprune.experiment.sweep import clone_model
from nnprune.optim import SGD, CosineAnnealingLR
from nnprune.prune import (CRITERIA, NEEDS_GRADS, global_topk_masks, gradient,
                           layerwise_topk_masks, magnitude, model_masks, percentile_mask,
                           prune_count, prune_model, random_scores, sparsity_of, taylor,
                           threshold_mask, topk_mask)
from nnprune.train import evaluate, fit, gradients

FAST = os.environ.get("NNPRUNE_FAST") == "1"

# %% [markdown]
# ## 1. Scores: how much does each weight matter?
#
# With $g = \partial L / \partial w$ the gradient of the training loss:
#
# - **magnitude**: $\sigma_j = \lvert w_j\rvert$ — small weights contribute little (Han et al.
#   2015);
# - **random**: $\sigma_j \sim U[0, 1)$, seeded — the baseline every criterion must beat;
# - **gradient**: $\sigma_j = \lvert g_j\rvert$ — the loss is sensitive to $w_j$ (but ignores
#   its size);
# - **taylor**: $\sigma_j = \lvert w_j g_j\rvert$ — the first-order change of the loss when $w_j$
#   is set to 0, $L(w - w_j e_j) - L(w) \approx -w_j g_j$ (Molchanov et al. 2017).
#
# On a small weight and a made-up gradient, the four criteria disagree about what to prune.
# The gradient score deletes the largest weight: the loss is nearly flat along it (small
# $g$), but setting it to zero is a long step, which a score that ignores $w$ cannot see.

# %%
w = np.array([[0.9, -0.05, 0.30],
              [-0.6, 0.02, -1.20]])
g = np.array([[0.01, 0.40, -0.20],
              [0.30, -0.90, 0.05]])
scores = {"magnitude": magnitude(w), "random": random_scores(w, seed=0),
          "gradient": gradient(g), "taylor": taylor(w, g)}
for name, s in scores.items():
    pruned = np.flatnonzero(topk_mask(s, 0.5).ravel() == 0)
    print(f"{name:>9}: scores {np.array2string(s.ravel(), precision=3)}  prunes entries {pruned}")
assert np.allclose(scores["taylor"], np.abs(w * g))  # |w·g|, entry by entry
largest = np.argmax(np.abs(w))  # the weight -1.2
assert topk_mask(scores["gradient"], 0.5).ravel()[largest] == 0  # pruned by the gradient score
assert topk_mask(scores["magnitude"], 0.5).ravel()[largest] == 1  # kept by magnitude

# %% [markdown]
# ## 2. From scores to a mask: threshold, percentile, exact top-k
#
# - `threshold_mask(scores, t)` keeps `scores > t` — the classic rule $\lvert w\rvert > t$.
#   The sparsity it reaches depends on the data.
# - `percentile_mask(scores, q)` sets $t$ to NumPy's $q$-th percentile of the scores, then
#   keeps `scores > t`. It aims at $q\,\%$ zeros, but **every score tied with $t$ is pruned
#   too**, so on ties it prunes more.
# - `topk_mask(scores, s)` prunes **exactly** $k$ entries, the $k$ lowest scores, with
#
# $$k = \lfloor s \cdot n + \tfrac12 \rfloor$$
#
#   (round half up, the one rounding rule of nnprune, `prune_count`). Ties are broken by flat
#   index: among equal scores the lower index is pruned first, so the same scores always give
#   the same mask.
#
# Ties are not exotic: quantised weights, ReLU units that never fire (zero gradients), and
# weights already pruned to zero all tie. Ten scores with five equal ones:

# %%
tied = np.array([0.5, 0.2, 0.2, 0.2, 0.2, 0.9, 0.7, 0.2, 0.4, 0.6])
n, target = tied.size, 0.3
k = prune_count(n, target)
by_threshold = threshold_mask(tied, 0.2)
by_percentile = percentile_mask(tied, 100 * target)
by_topk = topk_mask(tied, target)
print(f"n = {n}, target sparsity {target}: k = floor({target}·{n} + 0.5) = {k}")
print(f"np.percentile(tied, 30) = {np.percentile(tied, 30):.2f}")
for name, mask in (("threshold 0.2", by_threshold), ("percentile 30", by_percentile),
                   ("top-k", by_topk)):
    print(f"{name:>14}: mask {mask.astype(int)}  sparsity {1 - mask.mean():.1f}")
assert (by_topk == 0).sum() == k == 3                      # exactly k
assert np.array_equal(np.flatnonzero(by_topk == 0), [1, 2, 3])  # ties: lowest indices first
assert (by_percentile == 0).sum() == 5 > k                 # every tie pruned: more than asked
print("rounding rule:", prune_count(10, 0.25), "of 10 at 0.25;", prune_count(3, 0.5), "of 3 at 0.5")
assert prune_count(10, 0.25) == 3 and prune_count(3, 0.5) == 2  # halves round up

# %% [markdown]
# ### Exact top-k by hand
#
# A stable sort lists equal scores in index order, so the first $k$ positions of
# `np.argsort(scores, kind="stable")` are exactly the entries to prune. (An instructor's
# exercise file replaces the body below.)

# %%
def my_topk_mask(scores: np.ndarray, sparsity: float) -> np.ndarray:
    """Mask (1 = keep) pruning the k = ⌊sparsity·n + ½⌋ lowest scores, ties by flat index."""
    # solution
    flat = scores.ravel()
    k = int(np.floor(sparsity * flat.size + 0.5))
    order = np.argsort(flat, kind="stable")  # lowest first; equal scores in index order
    keep = np.ones(flat.size)
    keep[order[:k]] = 0.0
    return keep.reshape(scores.shape)


# %% tags=["check"]
# Check: exactly k = ⌊s·n + ½⌋ entries pruned, the lowest scores, ties by flat index —
# the ranking spelled out as a loop.
check_scores = np.random.default_rng(1).integers(0, 3, size=(4, 5)).astype(float)
for s in (0.0, 0.2, 0.35, 0.5, 1.0):
    k = int(np.floor(s * check_scores.size + 0.5))
    ranked = sorted(range(check_scores.size), key=lambda i: (check_scores.flat[i], i))
    want = np.ones(check_scores.size)
    want[ranked[:k]] = 0.0
    got = my_topk_mask(check_scores, s)
    assert got.shape == check_scores.shape and np.array_equal(got.ravel(), want), s

# %%
rng = np.random.default_rng(0)
quantised = rng.integers(0, 4, size=(6, 7)).astype(float)  # scores with many ties
for s in (0.0, 0.25, 0.5, 0.9, 1.0):
    assert np.array_equal(my_topk_mask(quantised, s), topk_mask(quantised, s))
    assert np.array_equal(my_topk_mask(tied, s), topk_mask(tied, s))
print("my_topk_mask agrees with topk_mask on tied scores at every sparsity tried")

# %% [markdown]
# ## 3. Masks compose: a pruned weight is never revived
#
# Pruning again — a higher target, another criterion, the next round of a schedule — must not
# bring back a weight that is already zero. Every mask function takes the existing `mask` and
# multiplies it in: the new mask is $\le$ the old one entry by entry. The zeros already there
# count toward the new target, and they are pruned first.

# %%
w_big = rng.standard_normal((20, 30))
g_big = rng.standard_normal((20, 30))
first = topk_mask(magnitude(w_big), 0.5)                         # by magnitude, 50 %
second = topk_mask(gradient(g_big), 0.7, mask=first)             # by gradient, 70 %, composed
fresh = topk_mask(gradient(g_big), 0.7)                          # the same, ignoring `first`
print(f"first: {int((first == 0).sum())} zeros; second: {int((second == 0).sum())} zeros "
      f"= prune_count(600, 0.7) = {prune_count(600, 0.7)}")
print(f"a fresh 70 % gradient mask would revive {int(((first == 0) & (fresh == 1)).sum())} "
      "weights that the first mask pruned")
assert np.all(second <= first)                                   # never revived
assert (second == 0).sum() == prune_count(w_big.size, 0.7)       # the target still holds
assert np.array_equal(topk_mask(gradient(g_big), 0.3, mask=first), first)  # cannot fall

# %% [markdown]
# ## 4. A trained network to prune
#
# The LeNet-300-100 network of Han et al. (an MLP 784-300-100-10 on MNIST) runs here on
# the bundled 8×8 digits: 64-300-100-10, 50,200 weights. It is trained with SGD and
# weight decay, which pushes the weights the task does not need toward zero — exactly what
# magnitude pruning then removes.
#
# **Edit the criterion here** — any of `nnprune.prune.CRITERIA` — and rerun the notebook:
# every table and the figure below follow it. Then run `pytest -m masks` to see that the
# mask properties checked in this tutorial hold for the whole library.

# %%
# ===== edit me: the pruning criterion ========================================
CRITERION = "magnitude"  # magnitude | random | gradient | taylor | taylor2 | snip
# ============================================================================
assert CRITERION in CRITERIA, f"CRITERION must be one of {CRITERIA}"

data = digits(seed=0)
train_set, test_set = (data.x_train, data.y_train), (data.x_test, data.y_test)
model = models.lenet_300_100(in_channels=1, input_size=8, seed=0)
epochs = 4 if FAST else 30
optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-2)
fit(model, train_set, optimizer, epochs, batch_size=64, seed=0,
    scheduler=CosineAnnealingLR(optimizer, T_max=epochs), quiet=True)
dense_accuracy = evaluate(model, test_set)["accuracy"]
print(f"dense test accuracy: {dense_accuracy:.3f}")
assert dense_accuracy > (0.8 if FAST else 0.93)

# the gradient-based criteria score with dL/dw averaged over the training split
grads = gradients(model, train_set) if CRITERION in NEEDS_GRADS else None

# %% [markdown]
# ## 5. Layer-wise or global?
#
# - **Layer-wise**: every weight tensor loses $k_\ell = \lfloor s\, n_\ell + \tfrac12\rfloor$ of
#   its $n_\ell$ entries.
# - **Global**: one ranking of all $N = \sum_\ell n_\ell$ scores,
#   $k = \lfloor s N + \tfrac12\rfloor$ pruned in total — a single threshold for the whole
#   network. Layers with small scores give up more; a minimum kept per layer (`min_keep`,
#   default 1) stops one from being emptied, which would cut the network in two.
#
# `prune_model` scores the prunable weights (conv and linear weights, not biases), builds the
# masks and attaches them; the `PruneReport` it returns is what was *reached*, per layer.

# %%
SPARSITY = 0.9
reports, accuracies = {}, {}
for scope in ("layer", "global"):
    pruned = clone_model(model)
    reports[scope] = prune_model(pruned, CRITERION, SPARSITY, scope=scope, grads=grads, seed=0)
    accuracies[scope] = evaluate(pruned, test_set)["accuracy"]
    print(f"--- scope={scope!r}: test accuracy {accuracies[scope]:.3f} (no fine-tuning)")
    print(reports[scope])

layer_counts = reports["layer"].layers  # {name: (entries, zeros)}
assert all(zeros == prune_count(n, SPARSITY) for n, zeros in layer_counts.values())
total = sum(n for n, _ in reports["global"].layers.values())
assert reports["global"].zeros == prune_count(total, SPARSITY)  # exactly k over all layers
spread = max(reports["global"].per_layer.values()) - min(reports["global"].per_layer.values())
print(f"global scope: per-layer sparsities spread over {spread:.1%}")
if CRITERION != "random":  # random scores are alike in every layer; real ones are not
    assert spread > 0.05  # one threshold does not prune every layer alike
if CRITERION == "magnitude":
    assert reports["global"].per_layer["5.weight"] < reports["global"].per_layer["3.weight"]

# %% [markdown]
# The same two scopes work on plain arrays — weights from any framework, converted with
# `.numpy()` — through `layerwise_topk_masks` and `global_topk_masks`. They return the masks
# and the report without touching a model, and agree with `prune_model`:

# %%
weights = {name: p.data for name, p in model.named_parameters() if p.data.ndim == 2}
masks_global, report_global = global_topk_masks({k: magnitude(v) for k, v in weights.items()},
                                                SPARSITY)
masks_layer, _ = layerwise_topk_masks({k: magnitude(v) for k, v in weights.items()}, SPARSITY)
check = clone_model(model)
prune_model(check, "magnitude", SPARSITY, scope="global")
assert all(np.array_equal(masks_global[k], m) for k, m in model_masks(check).items())
assert all((m == 0).sum() == prune_count(m.size, SPARSITY) for m in masks_layer.values())
print("array-level global masks match the model-level ones; sparsity reached",
      f"{report_global.sparsity:.4f}")

# %% [markdown]
# Global magnitude pruning leaves the small last layer more of its weights and strips the
# big 300→100 layer. Which input pixels keep their connections?
# Count the surviving weights of the first layer per input pixel and lay them out as an 8×8
# image (it appears in the figure of section 7): after full training the survivors sit on the
# centre of the image, where the digits vary, not on the border, which is nearly always
# blank.

# %%
global_model = clone_model(model)
prune_model(global_model, CRITERION, SPARSITY, scope="global", grads=grads, seed=0)
kept_per_pixel = model_masks(global_model)["1.weight"].sum(axis=0).reshape(8, 8)  # (64,) -> 8×8
pixel_std = data.x_train.std(axis=0).reshape(8, 8)
r = np.corrcoef(kept_per_pixel.ravel(), pixel_std.ravel())[0, 1]
print(kept_per_pixel.astype(int))
print(f"correlation of kept connections with the pixel's spread over the images: {r:.2f}")
if CRITERION == "magnitude" and not FAST:
    assert r > 0.5

# %% [markdown]
# ## 6. Fine-tuning under the mask
#
# After pruning, the survivors are retrained (Han et al. call it retraining; it is usually
# called fine-tuning). The mask stays attached to each `Parameter`: the gradient reaching a
# pruned entry is multiplied by its mask, and every optimizer re-applies the masks after its
# update, so momentum or weight decay cannot move a pruned weight off zero.

# %%
finetune_epochs = 2 if FAST else 10


def finetune(pruned_model) -> float:
    """Fine-tune with SGD (momentum 0.9, cosine-decayed rate); returns test accuracy."""
    opt = SGD(pruned_model.parameters(), lr=0.02, momentum=0.9)
    fit(pruned_model, train_set, opt, finetune_epochs, batch_size=64, seed=0,
        scheduler=CosineAnnealingLR(opt, T_max=finetune_epochs), quiet=True)
    return evaluate(pruned_model, test_set)["accuracy"]


before = evaluate(global_model, test_set)["accuracy"]
after = finetune(global_model)
print(f"global {SPARSITY:.0%}: {before:.3f} before fine-tuning, {after:.3f} after")
masks = model_masks(global_model)
for name, p in global_model.named_parameters():
    if name in masks:
        assert np.all(p.data[masks[name] == 0] == 0)  # still exactly zero
assert sparsity_of(global_model) == reports["global"].sparsity

# %% [markdown]
# ## 7. Accuracy against sparsity
#
# Prune the trained network (global scope) at rising sparsity, measure, fine-tune, measure
# again; random pruning, fine-tuned the same way, is the baseline.

# %%
sparsities = [0.5, 0.9] if FAST else [0.5, 0.8, 0.9, 0.95, 0.98]
rows = []
for s in sparsities:
    row = {"sparsity": s}
    for criterion in dict.fromkeys((CRITERION, "random")):
        pruned = clone_model(model)
        report = prune_model(pruned, criterion, s, scope="global", grads=grads, seed=0)
        row[criterion] = (evaluate(pruned, test_set)["accuracy"], finetune(pruned))
        assert sparsity_of(pruned) == report.sparsity  # fine-tuning kept every zero
    rows.append(row)

print(f"dense accuracy {dense_accuracy:.3f}; before → after {finetune_epochs} epochs of "
      "fine-tuning")
print(f"{'sparsity':>8}  {CRITERION:>17}  {'random':>17}")
for row in rows:
    cells = [f"{row[c][0]:.3f} → {row[c][1]:.3f}" for c in (CRITERION, "random")]
    print(f"{row['sparsity']:8.2f}  {cells[0]:>17}  {cells[1]:>17}")

highest = rows[-1][CRITERION]
assert highest[1] > highest[0]  # where pruning hurt most, fine-tuning recovers
at_90 = next(row for row in rows if row["sparsity"] == 0.9)
if CRITERION != "random":
    assert at_90[CRITERION][1] > at_90["random"][1] + 0.1  # the criterion beats random

# %%
fig, (ax, ax_img) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [3, 2]})
xs = [row["sparsity"] for row in rows]
ax.axhline(dense_accuracy, color="gray", linestyle=":", label="dense")
ax.plot(xs, [row[CRITERION][0] for row in rows], "o--", label=f"{CRITERION}, pruned")
ax.plot(xs, [row[CRITERION][1] for row in rows], "o-", label=f"{CRITERION}, fine-tuned")
ax.plot(xs, [row["random"][1] for row in rows], "s-", label="random, fine-tuned")
ax.set_xlabel("sparsity (fraction of weights pruned)")
ax.set_ylabel("test accuracy")
ax.set_title("LeNet-300-100 on 8×8 digits, global scope")
ax.legend()
image = ax_img.imshow(kept_per_pixel, cmap="viridis")
ax_img.set_title(f"first layer: kept weights per pixel\n({CRITERION}, {SPARSITY:.0%} global)")
ax_img.set_xticks([])
ax_img.set_yticks([])
fig.colorbar(image, ax=ax_img)
fig.tight_layout()
fig.savefig("02_accuracy_vs_sparsity.png", dpi=100)
print("saved", os.path.abspath("02_accuracy_vs_sparsity.png"))
assert os.path.getsize("02_accuracy_vs_sparsity.png") > 0

# %% [markdown]
# ## Summary
#
# - A score ranks the weights (higher = kept): $\lvert w\rvert$, $\lvert g\rvert$,
#   $\lvert w g\rvert$, or random as the control. A mask is a 0/1 array of the weight's shape.
# - `topk_mask` prunes exactly $k = \lfloor s n + \tfrac12\rfloor$ entries, ties by flat index;
#   a threshold or percentile prunes every tie and may overshoot the target.
# - Masks compose by multiplication: a new mask never revives a weight, and the zeros already
#   there count toward the target.
# - Layer-wise scope prunes every layer alike; global scope uses one threshold, so layers with
#   small scores lose more. Every call reports the sparsity it reached.
# - The mask stays on during fine-tuning (gradients and optimizer updates are masked), which
#   recovers most of the accuracy lost at high sparsity.
#
# ## Exercises
#
# 1. Set `CRITERION = "taylor"`, then `"gradient"`, and rerun. At which sparsity does each
#    fall below magnitude after fine-tuning? Run `pytest -m masks` afterwards.
# 2. Exclude the last layer (`exclude=["5.weight"]`) from global pruning. How does the
#    per-layer report change, and what happens to the accuracy at 95 %?
# 3. Write a score of your own — say $\lvert w_{ij}\rvert \cdot \lVert x_j\rVert$, the weight
#    times the norm of its input over the training set — and prune with
#    `global_topk_masks(scores, 0.9)` and `attach_masks`. Does it beat magnitude?
# 4. Make the pruning permanent with `make_permanent(model)` before fine-tuning. Which of the
#    assertions of section 6 fails, and why?
