# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 06 — Fine-tuning after pruning, and pruning during training
#
# A pruned network has lost accuracy; how it gets it back is a choice with several answers.
# This tutorial measures them on LeNet-300-100 and the 8×8 digits, at 95 % of the weights
# removed by global magnitude (tutorial 02):
#
# 1. **fine-tuning** the survivors from their trained values with a *small* learning rate
#    (Han et al. 2015), against **weight rewinding** (Frankle et al. 2020, Renda et al. 2020):
#    the survivors go back to their values early in training and are trained again with the
#    original learning rate;
# 2. **L1 or L2** regularisation while the network is trained and fine-tuned (Han et al. 2015,
#    Fig. 5), and what each does to the weights;
# 3. Han et al.'s **dropout rule** for a pruned layer;
# 4. pruning **after** training (train, prune, fine-tune) against pruning **during** training
#    (Zhu & Gupta's gradual schedule from the first step), where the masks are a constraint
#    that every optimizer step obeys.
#
# Every accuracy below is the mean ± standard deviation over several seeds (the seed sets
# the initialisation and the batch order; the split is fixed), and each table says how many
# seeds stand behind it. `NNPRUNE_FAST=1` runs two seeds and fewer epochs; the full run takes
# three seeds.

# %%
import math
import os
import time

import numpy as np

from nnprune import models
from nnprune.data import digits
from nnprune.experiment import workflows
from nnprune.experiment.runs import fit_model
from nnprune.nn import Dropout, Linear, ReLU, Sequential
from nnprune.prune import (l1_regularizer, l2_regularizer, model_masks, prunable_weights,
                           prune_model, rescale_dropout, rewind, snapshot)
from nnprune.train import evaluate

FAST = os.environ.get("NNPRUNE_FAST") == "1"
SEEDS = [0, 1] if FAST else [0, 1, 2]
EPOCHS = 4 if FAST else 15        # dense training
FINETUNE = 2 if FAST else 6       # the recovery budget, the same for every strategy
SPARSITY = 0.95
data = digits(seed=0)
test_set = (data.x_test, data.y_test)
started = time.perf_counter()


def fresh(seed):
    return models.lenet_300_100(in_channels=1, input_size=8, seed=seed)


def accuracy(model):
    return evaluate(model, test_set)["accuracy"]


def mean_std(values):
    """'mean ± std (n seeds)' of a list of accuracies, in percent."""
    values = np.array(values) * 100
    return f"{values.mean():5.1f} ± {values.std(ddof=1) if len(values) > 1 else 0:.1f} % " \
           f"({len(values)} seeds)"


# %% [markdown]
# ## 1. Fine-tuning or rewinding?
#
# Each seed trains one dense network, keeping a copy of its weights after the first epoch —
# the *rewind point* $\theta_k$. The network is pruned once to 95 %; then the same budget of
# `FINETUNE` epochs is spent three ways:
#
# - **fine-tune**: from the trained survivors, learning rate 0.002 (a tenth of training's);
# - **LR rewind**: from the trained survivors, training's learning rate 0.02 and its cosine
#   decay again;
# - **weight rewind**: survivors reset to $\theta_k \odot m$, then training's learning rate.

# %%
strategies = {"no fine-tuning": [], "fine-tune (lr 0.002)": [], "LR rewind (lr 0.02)": [],
              "weight rewind to epoch 1": []}
dense_accuracy = []
for seed in SEEDS:
    model, early = fresh(seed), {}
    steps_per_epoch = math.ceil(len(data.x_train) / 64)

    def keep_early(step, model=model, early=early):
        if step == steps_per_epoch:
            early.update(snapshot(model))

    fit_model(model, data, epochs=EPOCHS, lr=0.02, seed=seed, step_callback=keep_early)
    dense_accuracy.append(accuracy(model))
    trained = snapshot(model)
    prune_model(model, "magnitude", sparsity=SPARSITY, scope="global")
    masks = model_masks(model)
    strategies["no fine-tuning"].append(accuracy(model))
    for name, lr, start in (("fine-tune (lr 0.002)", 0.002, trained),
                            ("LR rewind (lr 0.02)", 0.02, trained),
                            ("weight rewind to epoch 1", 0.02, early)):
        rewind(model, start)  # θ ← start ⊙ m: the masks stay attached
        fit_model(model, data, epochs=FINETUNE, lr=lr, seed=seed)
        strategies[name].append(accuracy(model))
        zeros_kept = all(np.all(w[masks[n] == 0] == 0) for n, w in prunable_weights(model).items())
        assert zeros_kept  # SGD with momentum never moved a pruned weight

print(f"dense:                    {mean_std(dense_accuracy)}")
for name, values in strategies.items():
    print(f"{name:<25} {mean_std(values)}")
best = max(list(strategies)[1:], key=lambda n: np.mean(strategies[n]))
print(f"best recovery here: {best}")
assert all(np.mean(strategies[n]) > np.mean(strategies["no fine-tuning"])
           for n in list(strategies)[1:])  # every strategy recovers some accuracy

# %% [markdown]
# The small learning rate keeps the survivors near the minimum they were trained into; the
# large one lets them move further. Renda et al. (2020) found that retraining with the
# original rate — from the trained weights or from an early rewind point — beats
# fine-tuning at a small rate on ImageNet-scale networks for the same budget. The line "best
# recovery here" says which won on this run; with a few seeds on a small data set the
# spread above tells how much to trust it.

# %% [markdown]
# ## 2. L1 or L2? (Han et al. 2015, Fig. 5)
#
# A penalty λΣ|w| (L1) pulls every weight towards zero by the same amount per step, so many
# weights end *near* zero; λΣw² (L2) pulls each in proportion to its size, so weights shrink
# but few reach zero. Magnitude pruning removes the smallest: L1 prepares the network for it.
# Han et al. found L1 better when the pruned network is not retrained, L2 better once it is;
# the last two lines printed say whether this run agrees (on 8×8 digits and a few seeds, the
# spreads are wide: read them before the means).

# %%
penalties = {"L1": l1_regularizer(1e-4), "L2": l2_regularizer(1e-3)}
by_penalty = {name: {"near zero": [], "pruned": [], "retrained": []} for name in penalties}
for seed in SEEDS:
    for name, penalty in penalties.items():
        model = fresh(seed)
        fit_model(model, data, epochs=EPOCHS, lr=0.02, seed=seed, regularizer=penalty)
        weights = np.concatenate([w.ravel() for w in prunable_weights(model).values()])
        by_penalty[name]["near zero"].append(float(np.mean(np.abs(weights) < 1e-3)))
        prune_model(model, "magnitude", sparsity=SPARSITY, scope="global")
        by_penalty[name]["pruned"].append(accuracy(model))
        fit_model(model, data, epochs=FINETUNE, lr=0.02, seed=seed, regularizer=penalty)
        by_penalty[name]["retrained"].append(accuracy(model))
for name, rows in by_penalty.items():
    print(f"{name}: {np.mean(rows['near zero']):6.1%} of the weights below 1e-3 before pruning; "
          f"pruned {mean_std(rows['pruned'])}; retrained {mean_std(rows['retrained'])}")
assert np.mean(by_penalty["L1"]["near zero"]) > np.mean(by_penalty["L2"]["near zero"])
for stage, leader in (("pruned", "L1"), ("retrained", "L2")):
    other = "L2" if leader == "L1" else "L1"
    holds = np.mean(by_penalty[leader][stage]) > np.mean(by_penalty[other][stage])
    print(f"Han et al.'s order when {stage} ({leader} ahead) "
          f"{'holds' if holds else 'does not hold'} on this run")

# %% [markdown]
# ## 3. The dropout rule
#
# A pruned layer has fewer connections, so it over-fits less and needs less dropout. Han et
# al. scale the rate by the square root of the fraction of connections left,
# $D_r = D_o \sqrt{C_r / C_o}$: at 5 % of the weights left, a dropout of 0.5 becomes
# $0.5 \sqrt{0.05} \approx 0.112$.

# %%
net = Sequential(Linear(64, 300, rng=0), ReLU(), Dropout(0.5), Linear(300, 10, rng=1))
changed = rescale_dropout(net, 1.0, 0.05)
print("dropout:", changed)
assert math.isclose(changed["2"][1], 0.5 * math.sqrt(0.05)) and net[2].p == changed["2"][1]

# %% [markdown]
# ### Exercise: the dropout rule by hand
#
# Write the rate for a layer whose connections went from `c_o` to `c_r`.

# %%
def my_dropout_rate(d_o: float, c_o: int, c_r: int) -> float:
    """Han et al.'s D_r = D_o · √(C_r / C_o)."""
    # solution
    return d_o * math.sqrt(c_r / c_o)


# %% tags=["check"]
# Check: nothing pruned keeps the rate; a quarter of the connections halves it; none, zero.
assert my_dropout_rate(0.5, 1000, 1000) == 0.5
assert math.isclose(my_dropout_rate(0.5, 1000, 250), 0.25)
assert my_dropout_rate(0.3, 400, 0) == 0.0
assert math.isclose(my_dropout_rate(0.4, 90, 10), 0.4 / 3)

# %% [markdown]
# ## 4. Pruning after training, or during it?
#
# *After*: train dense for `EPOCHS`, prune once to 95 %, fine-tune `FINETUNE` epochs (section
# 1's "LR rewind"). *During*: start from the initialisation and train `EPOCHS + FINETUNE`
# epochs while Zhu & Gupta's cubic schedule raises the sparsity from 0 to 95 % over the
# first three quarters of the steps (tutorial 04). The total number of optimizer steps is
# the same. During training the masks are a constraint on every step: each update is
# followed by $w \leftarrow w \odot m$, so a weight the schedule removed never comes back,
# even with momentum.

# %%
during = []
for seed in SEEDS:
    record = workflows.gradual(fresh(seed), data, sparsity=SPARSITY, scope="global",
                               finetune_epochs=EPOCHS + FINETUNE, seed=seed)
    during.append(record["accuracy_after_finetune"])
    assert math.isclose(record["sparsity_reached"], SPARSITY, abs_tol=1e-4)
after = strategies["LR rewind (lr 0.02)"]
print(f"after training (train, prune, fine-tune): {mean_std(after)}")
print(f"during training (gradual from scratch):   {mean_std(during)}")
gap = (np.mean(during) - np.mean(after)) * 100
print(f"during − after: {gap:+.1f} points, same number of steps")
assert np.mean(during) > 0.5 and np.mean(after) > 0.5  # both far above chance (10 %)
print(f"ran in {time.perf_counter() - started:.0f} s")

# %% [markdown]
# ### Exercise: a masked L1 step
#
# Write one step of SGD on the loss plus λΣ|w|, with the mask as a constraint: the pruned
# entries stay exactly zero, and |w| has subgradient sign(w) (0 at w = 0).

# %%
def my_masked_l1_step(w: np.ndarray, grad: np.ndarray, mask: np.ndarray, lr: float,
                      strength: float) -> np.ndarray:
    """w ← (w − lr·(grad + λ·sign(w))) ⊙ mask."""
    # solution
    return (w - lr * (grad + strength * np.sign(w))) * mask


# %% tags=["check"]
# Check: entry by entry, the step written out; pruned entries stay 0.
w_check = np.array([0.5, -0.2, 0.0, 1.0])
g_check = np.array([0.1, 0.1, 0.3, -0.2])
m_check = np.array([1.0, 1.0, 1.0, 0.0])
stepped = my_masked_l1_step(w_check, g_check, m_check, lr=0.1, strength=0.5)
assert np.allclose(stepped, [0.5 - 0.1 * 0.6, -0.2 - 0.1 * (0.1 - 0.5), -0.03, 0.0])
assert stepped[3] == 0.0

# %% [markdown]
# ## Summary
#
# - The recovery budget can be spent as a small-rate fine-tune, a large-rate retrain
#   (LR rewinding) or a retrain from an early rewind point; the table above compares them on
#   the same masks, with the number of seeds behind each mean.
# - L1 leaves more weights near zero than L2 (asserted above), which is why it suits
#   pruning without retraining.
# - A pruned layer's dropout shrinks as √(C_r / C_o).
# - Pruning during training applies the masks after every step; with the same number of
#   steps it is compared above with pruning after training.
#
# ## Exercises
#
# 1. The two exercises above (`my_dropout_rate`, `my_masked_l1_step`).
# 2. Move the rewind point to step 0 (the initialisation: a lottery ticket, tutorial 04) and
#    to the end of training (then weight rewinding is LR rewinding). Where does accuracy drop?
# 3. Raise the sparsity to 98 % and rerun section 4 with five seeds. Does the gap's sign
#    hold, and is it larger than its standard deviation?
# 4. Prune with a second-order criterion instead of magnitude: `prune_model(model, "obd", ...)`
#    or `"obs"` (tutorial 05; the README's "Second order" section). Layer-wise OBS moves the
#    kept weights when it prunes: how much of section 1's fine-tuning does it still need?
