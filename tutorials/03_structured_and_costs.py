# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 03 — Granularity and what pruning buys
#
# Tutorial 02 pruned single weights. The zeros it leaves are scattered: a dense matrix
# product still multiplies every one of them, so a 90 %-sparse network runs no faster on
# ordinary hardware unless a sparse kernel skips the zeros. Pruning whole **groups** — a
# kernel, a filter, an input channel — leaves a smaller *dense* layer instead, and the
# **N:M** pattern (N kept of every M consecutive weights) is what sparse tensor cores run.
#
# This tutorial compares those granularities on a conv weight, then counts what pruning buys:
# parameters, non-zero parameters, multiply-accumulates (MACs), FLOPs, effective MACs, the
# compression ratio and the theoretical speed-up — with the definitions of Blalock et al.
# (2020, "What is the State of Neural Network Pruning?"), who found that papers too often
# leave them unstated.
#
# Seeds: the counts are exact; every accuracy here is one run at seed 0 (one seed stands
# behind each number, no error bars; tutorial 06 shows the spread over seeds).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from nnprune import models
from nnprune.count import count
from nnprune.data import digits
from nnprune.experiment.sweep import clone_model, fit_model
from nnprune.prune import (granularity_mask, group_scores, nm_mask, prune_count, prune_model)
from nnprune.prune.surgery import shrink
from nnprune.prune.units import mask_units
from nnprune.train import evaluate, predict

FAST = os.environ.get("NNPRUNE_FAST") == "1"

# %% [markdown]
# ## 1. Granularities on one conv weight
#
# A conv weight has shape $(F, C, k_h, k_w)$: $F$ filters (output channels), each with one
# $k_h \times k_w$ kernel per input channel. A group's score sums the scores of its entries,
# $S_g = \sum_{j \in g} \lvert w_j\rvert$ — for a filter this is its L1 norm, the criterion of
# Li et al. (2017, "Pruning Filters for Efficient ConvNets"). At sparsity $s$ the
# $\lfloor s \cdot G + \tfrac12\rfloor$ lowest of the $G$ groups are pruned.
#
# | granularity | a group is | groups in $(F, C, k_h, k_w)$ |
# |---|---|---|
# | weight | one entry | $F C k_h k_w$ |
# | kernel | the $k_h \times k_w$ kernel of one (filter, channel) pair | $F C$ |
# | filter | filter $f$: all of `w[f]` — one output channel | $F$ |
# | channel | input channel $c$: all of `w[:, c]` | $C$ |
# | N:M | — keep exactly N of every M consecutive weights along $C$ | fixed sparsity $1 - N/M$ |
#
# NVIDIA's Ampere GPUs run 2:4 sparsity in hardware, up to 2× faster on the pruned
# layers (Mishra et al. 2021, "Accelerating Sparse Deep Neural Networks").

# %%
rng = np.random.default_rng(0)
F, C, kh, kw = 4, 8, 3, 3
w = rng.standard_normal((F, C, kh, kw))
scores = np.abs(w)
masks = {g: granularity_mask(scores, 0.5, g) for g in ("weight", "kernel", "filter", "channel")}
masks["2:4"] = nm_mask(scores, 2, 4)


def kept_taps(mask: np.ndarray) -> str:
    """The F×C grid of kept taps per kernel (0..kh·kw), one text row per filter."""
    return "\n".join("  " + " ".join(str(int(t)) for t in row) for row in mask.sum(axis=(2, 3)))


for name, mask in masks.items():
    print(f"{name}: sparsity {1 - mask.mean():.2f}; kept taps of each 3×3 kernel "
          f"(rows = filters, columns = input channels)")
    print(kept_taps(mask))

# %% [markdown]
# Each mask has the structure its granularity promises, and prunes exactly the count the
# rounding rule gives — of groups, not of weights:

# %%
kernel_alive = masks["kernel"].max(axis=(2, 3))                  # (F, C)
assert np.array_equal(masks["kernel"].min(axis=(2, 3)), kernel_alive)  # whole kernels
assert (kernel_alive == 0).sum() == prune_count(F * C, 0.5)

filter_alive = masks["filter"].max(axis=(1, 2, 3))               # (F,)
assert np.array_equal(masks["filter"].min(axis=(1, 2, 3)), filter_alive)
assert (filter_alive == 0).sum() == prune_count(F, 0.5)
l1 = group_scores(scores, "filter")                              # (F,): Σ|w| per filter
assert set(np.flatnonzero(filter_alive == 0)) == set(np.argsort(l1)[:prune_count(F, 0.5)])
print("filter L1 norms:", np.round(l1, 1), "-> pruned filters", np.flatnonzero(filter_alive == 0))

channel_alive = masks["channel"].max(axis=(0, 2, 3))             # (C,)
assert np.array_equal(masks["channel"].min(axis=(0, 2, 3)), channel_alive)
assert (channel_alive == 0).sum() == prune_count(C, 0.5)

# 2:4: groups of 4 consecutive input channels at every (filter, kh, kw) position
groups_of_4 = np.moveaxis(masks["2:4"], 1, -1).reshape(-1, 4)    # (F·kh·kw·C/4, 4)
assert np.all(groups_of_4.sum(axis=1) == 2)                      # exactly 2 kept of every 4
print(f"2:4: {len(groups_of_4)} groups of 4, each keeps exactly 2; "
      f"filter 0, tap (0, 0), channels 0..7: {masks['2:4'][0, :, 0, 0].astype(int)}")

# %%
fig, axes = plt.subplots(1, len(masks), figsize=(3.2 * len(masks), 2.6))
for ax, (name, mask) in zip(axes, masks.items()):
    # (F, C, kh, kw) -> (F·kh, C·kw): one row of kernels per filter, one column per channel
    ax.imshow(mask.transpose(0, 2, 1, 3).reshape(F * kh, C * kw), cmap="Greys", vmin=0, vmax=1)
    ax.set_xticks(np.arange(C + 1) * kw - 0.5, minor=True)
    ax.set_yticks(np.arange(F + 1) * kh - 0.5, minor=True)
    ax.grid(which="minor", color="tab:red", linewidth=0.8)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(f"{name} (black = kept)")
    ax.set_xlabel("input channels")
axes[0].set_ylabel("filters")
fig.tight_layout()
fig.savefig("03_granularity_masks.png", dpi=100)
print("saved", os.path.abspath("03_granularity_masks.png"))

# %% [markdown]
# ## 2. Counting costs
#
# Per image, with bias excluded from the MACs (the convention of `nnprune.count`):
#
# - a convolution with output $F \times OH \times OW$ and kernel $C \times k_h \times k_w$ does
#   $\text{MACs} = OH \cdot OW \cdot F \cdot C \cdot k_h \cdot k_w$ multiply-accumulates;
#   a linear layer $\text{MACs} = \text{in} \cdot \text{out}$; pooling, activations and
#   BatchNorm count 0;
# - $\text{FLOPs} = 2 \cdot \text{MACs}$ (one multiply and one add each);
# - the **density** of a layer is $\text{nnz}(w) / \lvert w\rvert$, and its **effective MACs**
#   are $\text{MACs} \times \text{density}$ — what a kernel that skips every zero weight would
#   do (Blalock et al. 2020);
# - **compression ratio** = params / non-zero params; **theoretical speed-up** =
#   MACs / effective MACs.
#
# Han et al.'s LeNet-5 (Caffe's: conv 20 and 50 of 5×5, fc 500, fc 10) on a 28×28 MNIST digit,
# by hand:

# %%
def conv_macs(out_h: int, out_w: int, weight_shape: tuple[int, int, int, int]) -> int:
    """MACs of one conv layer per image: OH·OW·F·C·kh·kw (bias excluded)."""
    # solution
    f, c, k_h, k_w = weight_shape
    return out_h * out_w * f * c * k_h * k_w


# %% tags=["check"]
# Check: count the multiply-accumulates of small convolutions one at a time.
def macs_by_loop(out_h, out_w, f, c, k_h, k_w):
    total = 0
    for _ in range(out_h * out_w * f):      # every output value ...
        for _ in range(c * k_h * k_w):      # ... sums C·kh·kw products
            total += 1
    return total


for shape in ((3, 2, 3, 2), (1, 1, 1, 1), (4, 3, 5, 1)):
    assert conv_macs(5, 4, shape) == macs_by_loop(5, 4, *shape), shape

# %%
by_hand = {"conv1": conv_macs(24, 24, (20, 1, 5, 5)),    # 28 − 5 + 1 = 24
           "conv2": conv_macs(8, 8, (50, 20, 5, 5)),     # pool → 12, 12 − 5 + 1 = 8
           "fc1": 50 * 4 * 4 * 500,                      # pool → 4: 800 inputs
           "fc2": 500 * 10}
for name, macs in by_hand.items():
    print(f"{name:>5}: {macs:>9,} MACs")
print(f"total: {sum(by_hand.values()):,} MACs = {2 * sum(by_hand.values()):,} FLOPs")

lenet = count(models.lenet5(in_channels=1, input_size=28), (1, 28, 28))
print(lenet)
assert lenet.macs == sum(by_hand.values()) == 2_293_000
assert lenet.params == 431_080 and lenet.flops == 2 * lenet.macs
assert [row.macs for row in lenet.layers if row.macs] == list(by_hand.values())

# %% [markdown]
# Parameters and MACs live in different layers. In LeNet-5 the first fully connected layer
# holds most of the parameters, the second convolution most of the MACs; so pruning that
# shrinks the file may barely speed up the network, and the other way round.

# %%
params_share = {row.name: row.params / lenet.params for row in lenet.layers if row.macs}
macs_share = {row.name: row.macs / lenet.macs for row in lenet.layers if row.macs}
for name in params_share:
    print(f"layer {name}: {params_share[name]:6.1%} of the parameters, "
          f"{macs_share[name]:6.1%} of the MACs")
assert max(params_share, key=params_share.get) == "5"   # fc1
assert max(macs_share, key=macs_share.get) == "2"       # conv2

# %% [markdown]
# The CIFAR VGG-16 of Li et al. (2017) — 13 convolutions with BatchNorm, then two linear
# layers — shows the same split at scale: its early convolutions on 32×32 maps are cheap in
# parameters and expensive in MACs, its last ones the reverse. (Building the model draws
# its 15 million weights; counting needs no forward pass.)

# %%
vgg = count(models.vgg16(in_channels=3, input_size=32), (3, 32, 32))
print(f"VGG-16 on 3×32×32: {vgg.params:,} parameters, {vgg.macs:,} MACs, {vgg.flops:,} FLOPs")
assert vgg.macs == 313_463_808 and vgg.params == 14_986_698
convs = [row for row in vgg.layers if row.kind == "Conv2d"]
print(f"{'conv':>5} {'output':>12} {'params':>10} {'MACs':>12}")
for row in convs:
    print(f"{row.name:>5} {'×'.join(map(str, row.output_shape)):>12} {row.params:>10,} "
          f"{row.macs:>12,}")
first, last3 = convs[1], convs[-3:]
print(f"the second convolution: {first.params / vgg.params:.2%} of the parameters, "
      f"{first.macs / vgg.macs:.1%} of the MACs; the last three convolutions: "
      f"{sum(r.params for r in last3) / vgg.params:.1%} and "
      f"{sum(r.macs for r in last3) / vgg.macs:.1%}")
assert max(convs, key=lambda r: r.params) is not max(convs, key=lambda r: r.macs)

# %% [markdown]
# ## 3. Pruning LeNet-5: effective MACs fall with density
#
# Now a LeNet-5 trained on the 8×8 digits (its convolutions padded to keep the maps, so two
# 5×5 layers fit). Magnitude pruning at rising sparsity, layer-wise and global, then a short
# fine-tuning. Layer-wise pruning gives every layer the same density $1 - s$, so the
# effective MACs are exactly $\sum_\ell u_\ell \cdot (n_\ell - k_\ell)$, with $u_\ell$ the
# times each weight is used per image ($OH \cdot OW$ for a conv, 1 for a linear layer), and
# the speed-up is $\approx 1/(1-s)$; the compression ratio is a little lower, because the
# biases are counted and never pruned. Global pruning makes the two differ by layer.

# %%
data = digits(seed=0)
test_set = (data.x_test, data.y_test)
lenet_digits = models.lenet5(in_channels=1, input_size=8, seed=0)
fit_model(lenet_digits, data, epochs=3 if FAST else 20, lr=0.02, weight_decay=5e-4)
dense_cost = count(lenet_digits, data.input_shape)
dense_accuracy = evaluate(lenet_digits, test_set)["accuracy"]
print(dense_cost)
print(f"dense test accuracy {dense_accuracy:.3f}")
finetune_epochs = 1 if FAST else 5

sparsities = [0.5, 0.9] if FAST else [0.5, 0.8, 0.9, 0.95]
rows = []
for scope in ("layer", "global"):
    for s in sparsities:
        pruned = clone_model(lenet_digits)
        prune_model(pruned, "magnitude", s, scope=scope)
        cost = count(pruned, data.input_shape)
        before = evaluate(pruned, test_set)["accuracy"]
        fit_model(pruned, data, epochs=finetune_epochs, lr=0.01)
        after = evaluate(pruned, test_set)["accuracy"]
        assert count(pruned, data.input_shape).effective_macs == cost.effective_macs  # masks kept
        rows.append({"scope": scope, "sparsity": s, "cost": cost, "before": before,
                     "after": after})
        # effective MACs = Σ MACs × density, layer by layer (Blalock et al. 2020)
        assert np.isclose(cost.effective_macs,
                          sum(r.macs * r.density for r in cost.layers if r.macs))
        assert cost.speedup == cost.macs / cost.effective_macs
        if scope == "layer":  # each weight keeps n − ⌊s·n + ½⌋ entries, used MACs / n times
            expected = 0
            for r in cost.layers:
                if r.macs:
                    n = pruned[int(r.name)].weight.size
                    expected += r.macs // n * (n - prune_count(n, s))
            assert cost.effective_macs == expected

print(f"dense: {dense_cost.params:,} params, {dense_cost.macs:,} MACs, accuracy "
      f"{dense_accuracy:.3f}; fine-tuned {finetune_epochs} epoch(s) after pruning")
print(f"{'scope':>6} {'sparsity':>8} {'nonzero':>8} {'compr.':>7} {'eff. MACs':>10} "
      f"{'speed-up':>8} {'pruned':>7} {'tuned':>6}   density conv1 conv2 fc1 fc2")
for row in rows:
    cost = row["cost"]
    densities = " ".join(f"{r.density:.3f}" for r in cost.layers if r.macs)
    print(f"{row['scope']:>6} {row['sparsity']:8.2f} {cost.nonzero_params:>8,} "
          f"{cost.compression_ratio:6.2f}× {cost.effective_macs:>10,} {cost.speedup:7.2f}× "
          f"{row['before']:7.3f} {row['after']:6.3f}   {densities}")

for scope in ("layer", "global"):  # fewer weights, fewer effective MACs
    effective = [row["cost"].effective_macs for row in rows if row["scope"] == scope]
    assert all(a > b for a, b in zip(effective, effective[1:]))
for row in rows:
    if row["scope"] == "layer":
        assert abs(row["cost"].speedup - 1 / (1 - row["sparsity"])) < 0.01
        assert row["cost"].compression_ratio < row["cost"].speedup  # the biases stay

# %% [markdown]
# Global magnitude pruning compares weights across layers, and the layers do not share a
# scale: PyTorch's default initialisation (ours too) draws $w \sim U(-1/\sqrt{\text{fan-in}},
# 1/\sqrt{\text{fan-in}})$, so a layer with a large fan-in starts — and, with little
# training, stays — with small weights, and one threshold strips it first. Here that layer is
# conv2 (fan-in 20·5·5 = 500), which also does most of the MACs; conv1 (fan-in 25) has the
# largest weights and keeps most of them. Which of the speed-up and the compression ratio
# ends higher depends on where the MACs of the surviving weights sit: print both.

# %%
at_90 = next(row for row in rows if row["scope"] == "global" and row["sparsity"] == 0.9)
mean_abs = {name: float(np.abs(p.data).mean())
            for name, p in lenet_digits.named_parameters() if p.data.ndim >= 2}
densities = {f"{r.name}.weight": r.density for r in at_90["cost"].layers if r.macs}
for name in mean_abs:
    print(f"{name}: mean |w| {mean_abs[name]:.4f}, density after 90 % global {densities[name]:.3f}")
print(f"90 % global: compression {at_90['cost'].compression_ratio:.2f}×, "
      f"theoretical speed-up {at_90['cost'].speedup:.2f}×")
assert min(densities, key=densities.get) == min(mean_abs, key=mean_abs.get) == "2.weight"
assert max(densities, key=densities.get) == max(mean_abs, key=mean_abs.get) == "0.weight"

# %%
fig, ax = plt.subplots(figsize=(6, 4))
for scope, marker in (("layer", "o"), ("global", "s")):
    picked = [row for row in rows if row["scope"] == scope]
    ax.plot([1 - row["sparsity"] for row in picked],
            [row["cost"].effective_macs for row in picked], marker + "-", label=f"{scope} scope")
ax.plot([0, 1], [0, dense_cost.macs], ":", color="gray", label="dense MACs × density")
ax.set_xlabel("density of the weights (1 − sparsity)")
ax.set_ylabel("effective MACs per image")
ax.set_title("LeNet-5 on 8×8 digits, magnitude pruning")
ax.legend()
fig.tight_layout()
fig.savefig("03_effective_macs.png", dpi=100)
print("saved", os.path.abspath("03_effective_macs.png"))

# %% [markdown]
# ## 4. Structured pruning: a smaller dense network
#
# Effective MACs assume a kernel that skips zeros one by one. Group pruning needs no such
# kernel. Prune half of conv2 — the layer with most of the MACs — at each granularity, the
# other layers left dense, and fine-tune:

# %%
others = ["0.weight", "5.weight", "7.weight"]
structured = {}
for granularity in ("weight", "kernel", "filter", "channel", "2:4"):
    pruned = clone_model(lenet_digits)
    report = prune_model(pruned, "magnitude", None if granularity == "2:4" else 0.5,
                         granularity=granularity, exclude=others)
    cost = count(pruned, data.input_shape)
    before = evaluate(pruned, test_set)["accuracy"]
    fit_model(pruned, data, epochs=finetune_epochs, lr=0.01)
    structured[granularity] = {"model": pruned, "cost": cost, "before": before,
                               "after": evaluate(pruned, test_set)["accuracy"]}
    assert report.sparsity_of("2.weight") == 0.5  # 25 of 50 filters, 10 of 20 channels, ...

print(f"conv2 at 50 % (dense accuracy {dense_accuracy:.3f})")
print(f"{'granularity':>11} {'eff. MACs':>10} {'speed-up':>8} {'pruned':>7} {'tuned':>6}")
for granularity, result in structured.items():
    cost = result["cost"]
    print(f"{granularity:>11} {cost.effective_macs:>10,} {cost.speedup:7.2f}× "
          f"{result['before']:7.3f} {result['after']:6.3f}")
    assert cost.effective_macs == dense_cost.macs - 400_000 // 2  # conv2's MACs halved

# %% [markdown]
# The coarser the group, the more the same sparsity costs before fine-tuning: whole filters
# or whole input channels cost most, the fine-grained patterns (single weights, 2:4) least.

# %%
fine, coarse = ("weight", "2:4"), ("kernel", "filter", "channel")
assert min(structured, key=lambda g: structured[g]["before"]) in ("filter", "channel")
assert min(structured[g]["before"] for g in fine) >= max(structured[g]["before"] for g in coarse)

# %% [markdown]
# The same count of zeros, and so the same effective MACs — but not the same network. After
# filter pruning, 25 of conv2's 50 output channels are constant: a pruned filter still adds
# its bias $b_f$, so its map is the constant $b_f$ (no activation sits between conv2 and the
# pooling in Caffe's LeNet-5). **Surgery** removes them: a conv2 with 25 filters, an fc1 that
# reads 25·2·2 = 100 inputs instead of 200 (through the Flatten, channel $f$ owns the 2·2
# consecutive columns $4f, \dots, 4f+3$), and the constants folded into fc1's bias,
#
# $$b^{(1)}_i \leftarrow b^{(1)}_i + \sum_{f\ \text{pruned}} \sum_{p} W^{(1)}_{i,(f,p)}\, b_f ,$$
#
# with $W^{(1)}, b^{(1)}$ fc1's weight and bias and $p$ the 2·2 pooled positions of channel
# $f$. `shrink` does this for every layer whose mask has all-zero filters (or neurons): it
# returns a new, smaller model and a report. The smaller *dense* network computes the same
# logits (to float32 rounding), and its MACs — counted as dense — are below the pruned
# model's effective MACs, because the fc1 weights that read the dead channels go too.

# %%
filtered = structured["filter"]["model"]
small, surgery_report = shrink(filtered, data.input_shape)
print(small)
print(surgery_report)

difference = np.abs(predict(small, data.x_test) - predict(filtered, data.x_test)).max()
small_cost = count(small, data.input_shape)
print(f"max |logits(small) − logits(pruned)| = {difference:.1e}")
print(f"pruned model: {structured['filter']['cost'].effective_macs:,} effective MACs; "
      f"after surgery: {small_cost.macs:,} dense MACs, {small_cost.params:,} parameters "
      f"(dense speed-up {dense_cost.macs / small_cost.macs:.2f}×)")
assert difference < 1e-4
assert surgery_report.widths["2"] == (50, 25) and small[5].weight.shape == (500, 100)
assert surgery_report.macs == (dense_cost.macs, small_cost.macs)
assert small_cost.macs == 32_000 + 200_000 + 50_000 + 5_000
assert small_cost.macs < structured["filter"]["cost"].effective_macs

# %% [markdown]
# The constant of a removed filter can be folded only where one bias can stand for it: into a
# linear layer (each input column is one number), or into a convolution *without* padding
# (every output position sees the constant through all its taps). conv1's consumer, conv2,
# is padded: at the borders its taps read zeros instead of the constant, so no bias is
# exact there, and `shrink` refuses rather than guess:

# %%
everything = clone_model(lenet_digits)
prune_model(everything, "magnitude", 0.5, granularity="filter", exclude=["7.weight"])
try:
    shrink(everything, data.input_shape)
except ValueError as err:
    print("ValueError:", err)
else:
    raise AssertionError("folding into a padded convolution should have been refused")

# %% [markdown]
# The way out is to prune the **whole unit**, not just its weights. `mask_units` finds every
# dead filter (neuron) and masks its bias too — and the γ, β of a BatchNorm after it, had
# LeNet-5 one, since $\gamma_f \hat x_f + \beta_f = 0$ whatever the statistics. A masked
# unit then outputs exactly 0, there is no constant left to fold, and the masks stay in
# force while fine-tuning like any other. Here it changes the network (the dead biases were
# on), which is why it belongs right after pruning, before fine-tuning.

# %%
dead = mask_units(everything)
print({layer: len(units) for layer, units in dead.items()}, "dead units masked whole")
assert {layer: len(units) for layer, units in dead.items()} == {"0": 10, "2": 25, "5": 250}
assert all(np.all(everything[int(layer)].bias.data[units] == 0) for layer, units in dead.items())

# %% [markdown]
# ## 5. Prune, fine-tune, shrink
#
# The usual recipe for filter pruning (Li et al. 2017) is to prune whole filters, fine-tune
# with the masks in force, cut the dead filters out and fine-tune the smaller network again.
# With the units masked whole, the cut is exact: the small network computes the fine-tuned
# pruned one's logits, through the padded conv2 too, so it starts with the same accuracy.
# Half of the filters of conv1 and conv2 and half of fc1's neurons go; the costs follow the
# formulas, layer by layer: conv $OH \cdot OW \cdot F' \cdot C' \cdot k_h k_w$ with both $F$
# and the next layer's $C$ halved, so the MACs fall to about a quarter.

# %%
fit_model(everything, data, epochs=finetune_epochs, lr=0.01)
assert all(np.all(everything[int(layer)].bias.data[units] == 0) for layer, units in dead.items())
tuned_accuracy = evaluate(everything, test_set)["accuracy"]
small, surgery_report = shrink(everything, data.input_shape)
difference = np.abs(predict(small, data.x_test) - predict(everything, data.x_test)).max()
cut_accuracy = evaluate(small, test_set)["accuracy"]
fit_model(small, data, epochs=finetune_epochs, lr=0.01)
recipe = {"dense": dense_accuracy, "pruned and fine-tuned": tuned_accuracy,
          "shrunk": cut_accuracy, "shrunk and fine-tuned": evaluate(small, test_set)["accuracy"]}
print(surgery_report)
print(f"max |logits(small) − logits(pruned)| = {difference:.1e}")
for stage, accuracy in recipe.items():
    print(f"{stage:>22}: test accuracy {accuracy:.3f}")
# equal logits up to float32 rounding: the accuracies may differ only on an exact near-tie
assert difference < 1e-4 and abs(cut_accuracy - tuned_accuracy) <= 1 / len(data.y_test)
assert [after for _, after in surgery_report.widths.values()] == [10, 25, 250, 10]
# conv1 8·8·10·1·25, conv2 4·4·25·10·25, fc1 (25·2·2)·250, fc2 250·10
assert surgery_report.macs[1] == 16_000 + 100_000 + 25_000 + 2_500
assert surgery_report.params[1] == count(small, data.input_shape).params

# %% [markdown]
# ## Summary
#
# - Granularity decides what is pruned together: single weights, kernels, filters (output
#   channels), input channels, or N of every M weights. Group scores sum the entries' scores
#   (a filter's L1 norm, Li et al. 2017); the rounding rule counts groups.
# - Costs per image: MACs $= OH \cdot OW \cdot F \cdot C \cdot k_h k_w$ for a convolution,
#   in·out for a linear layer, FLOPs $= 2\cdot$MACs; effective MACs $=$ MACs × density
#   (Blalock et al. 2020); compression ratio $=$ params / non-zero params; theoretical
#   speed-up $=$ MACs / effective MACs. LeNet-5: 2,293,000 MACs; VGG-16: 313,463,808.
# - Parameters and MACs sit in different layers, so compression and speed-up differ; global
#   magnitude pruning strips the layers with small weights (large fan-in) first.
# - Unstructured zeros need a sparse kernel to pay off; 2:4 needs sparse tensor cores; a
#   pruned filter is removed by surgery (`shrink`), leaving a smaller dense network with the
#   same outputs — and it also removes the next layer's inputs, which effective MACs do not
#   count. A removed filter's constant output folds into the next bias only where one bias can
#   stand for it; masking the whole unit (`mask_units`: weights, bias, BatchNorm γ, β) leaves
#   no constant, so the cut is exact everywhere, padded convolutions included.
# - A filter's norm is one criterion of several: `prune_model(model, "fpgm", 0.5,
#   granularity="filter")` takes any of `nnprune.prune.channel_criteria.CHANNEL_CRITERIA`
#   (`l1_norm`, `l2_norm`, `fpgm`, `bn_gamma`, `taylor_group`, `apoz`, `mean_activation`),
#   with `layer_norm` to rank layers of different scales together; `nnprune sensitivity`
#   measures how much pruning each layer tolerates (the README shows them on a ResNet-20).
#
# ## Exercises
#
# 1. Prune the 28×28 LeNet-5 to Han et al.'s per-layer densities (conv1 66 %, conv2 12 %,
#    fc1 8 %, fc2 19 %, with `layerwise_topk_masks` and a sparsity dict) and compute its
#    compression ratio and theoretical speed-up. Which of the two is larger, and why?
# 2. Prune conv2 by *channel* (`granularity="channel"`) and `shrink` the model: which of
#    conv1's filters go, and why is that exact even though conv2 is padded? How many MACs
#    does the smaller network need?
# 3. Compare `reduce="l1"` and `reduce="l2"` group scores for filter pruning of conv2's
#    weight (`granularity_mask(np.abs(w), 0.5, "filter", reduce=...)`). Do they prune the
#    same filters?
# 4. Count VGG-16 with `width=0.5`. By what factor do its MACs and parameters fall, and why
#    is it almost exactly 4?
