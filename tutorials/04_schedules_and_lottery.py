# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
# ---

# %% [markdown]
# # 04 — When to prune: one-shot, iterative, gradual, at initialisation, lottery tickets
#
# Tutorials 02 and 03 decided *which* weights to prune. This one decides *when*:
#
# - **one-shot**: train, prune to $s$ once, fine-tune;
# - **iterative** (Han et al. 2015): train, then $R$ rounds of prune → fine-tune with rising
#   targets;
# - **gradual** (Zhu & Gupta 2017): prune *during* training, the target rising as a cubic;
# - **at initialisation** (SNIP, Lee et al. 2019): prune the untrained network, then train;
# - **lottery ticket** (Frankle & Carbin 2019): train → prune $p$ of what remains → rewind
#   the survivors to their initial values, $R$ times; then train the ticket.
#
# Every schedule here ends at the same sparsity, on the same network and data, so their
# accuracies can be compared — together with what each one costs in training.
#
# Seeds: every accuracy is one run at seed 0. One seed stands behind each number, so a gap of
# a point or two between two rows is within what another seed could change (tutorial 06
# prints mean ± std over seeds).

# %%
import os

import matplotlib.pyplot as plt
import numpy as np

from nnprune import models
from nnprune.data import digits
from nnprune.experiment import workflows
from nnprune.experiment.sweep import clone_model, fit_model
from nnprune.prune import (attach_masks, global_topk_masks, iterative_sparsities,
                           lottery_sparsities, model_masks, polynomial_sparsity, prunable_weights,
                           prune_count, prune_round, rewind, snapshot, snip)
from nnprune.train import evaluate, gradients

FAST = os.environ.get("NNPRUNE_FAST") == "1"

# %% [markdown]
# ## 1. Schedules are sequences of targets
#
# **Gradual** (Zhu & Gupta 2017, "To prune, or not to prune"). From step $t_0$, every
# $\Delta t$ steps for $n$ updates, the target is
#
# $$s_t = s_f + (s_i - s_f)\left(1 - \frac{t - t_0}{n\,\Delta t}\right)^3 ,
#   \qquad t_0 \le t \le t_0 + n\,\Delta t ,$$
#
# $s_i$ before $t_0$ and $s_f$ after. It prunes fast while many weights are redundant and
# slows down as fewer remain: the increments shrink from update to update.
#
# **Iterative** (Han et al. 2015) uses rounds: targets $s_1 < \dots < s_R = s_f$, either
# *geometric* — every round keeps the same fraction of the remaining weights,
# $1 - s_r = (1 - s_f)^{r/R}$ — or *linear*, $s_r = s_f\, r / R$.
#
# **Lottery** (Frankle & Carbin 2019) prunes a fraction $p$ of the *remaining* weights each
# round, so after $k$ rounds the kept fraction is $(1 - p)^k$ and the target is
# $s_k = 1 - (1 - p)^k$ (the paper uses $p = 20\,\%$).
#
# Targets are fractions of *all* the weights; the masks never revive a weight, so each round
# prunes up to $\lfloor s_r n + \tfrac12 \rfloor$ zeros in total (tutorial 02's rounding rule).

# %%
def my_cubic(t: int, s_i: float, s_f: float, t0: int, n: int, dt: int) -> float:
    """Zhu & Gupta's target at an update step t = t0 + j·dt, j = 0..n."""
    # solution
    return s_f + (s_i - s_f) * (1 - (t - t0) / (n * dt)) ** 3


# %% tags=["check"]
# Check: the endpoints, the halfway value 0.9 − 0.9·(½)³ = 0.7875, and ever smaller steps.
assert my_cubic(100, 0.0, 0.9, 100, 10, 50) == 0.0
assert np.isclose(my_cubic(600, 0.0, 0.9, 100, 10, 50), 0.9)
assert np.isclose(my_cubic(350, 0.0, 0.9, 100, 10, 50), 0.7875)
check_steps = np.diff([my_cubic(100 + 50 * j, 0.2, 0.8, 100, 10, 50) for j in range(11)])
assert np.all(check_steps > 0) and np.all(np.diff(check_steps) < 0)

# %%
s_i, s_f, t0, n_updates, dt = 0.0, 0.9, 100, 10, 50
end = t0 + n_updates * dt
steps = np.arange(0, end + 201)
targets = [polynomial_sparsity(int(t), s_i, s_f, t0, n_updates, dt) for t in steps]
updates = [t0 + j * dt for j in range(n_updates + 1)]
at_updates = [polynomial_sparsity(t, s_i, s_f, t0, n_updates, dt) for t in updates]
print("targets at the update steps:", np.round(at_updates, 4))

assert at_updates[0] == s_i and at_updates[-1] == s_f            # exact endpoints
assert polynomial_sparsity(0, s_i, s_f, t0, n_updates, dt) == s_i  # before t0
assert polynomial_sparsity(end + 1000, s_i, s_f, t0, n_updates, dt) == s_f
assert all(np.isclose(my_cubic(t, s_i, s_f, t0, n_updates, dt), s)
           for t, s in zip(updates, at_updates))
increments = np.diff(at_updates)
assert np.all(np.diff(targets) >= 0)                 # never falls
assert np.all(np.diff(increments) <= 1e-12)          # each step no larger than the last

geometric = iterative_sparsities(0.9, 3, "geometric")
linear = iterative_sparsities(0.9, 3, "linear")
lottery_targets = lottery_sparsities(0.2, 10)
print("iterative, geometric:", np.round(geometric, 4), " linear:", np.round(linear, 4))
print("lottery, p = 0.2:    ", np.round(lottery_targets, 4))
kept = 1 - np.array([0.0] + geometric)
assert np.allclose(kept[1:] / kept[:-1], 0.1 ** (1 / 3))   # the same fraction kept each round
assert np.allclose(1 - np.array(lottery_targets), 0.8 ** np.arange(1, 11))  # (1 − p)^k

# %%
fig, (ax, ax_rounds) = plt.subplots(1, 2, figsize=(10, 3.8))
ax.plot(steps, targets, label="target $s_t$ (held between updates)")
ax.plot(updates, at_updates, "o", label="update steps")
ax.axvline(t0, color="gray", linestyle=":")
ax.axvline(end, color="gray", linestyle=":")
ax.set_xlabel("training step")
ax.set_ylabel("sparsity")
ax.set_title(f"Zhu & Gupta: $s_i$={s_i}, $s_f$={s_f}, $t_0$={t0}, n={n_updates}, Δt={dt}")
ax.legend(loc="lower right")
ax_rounds.plot(range(1, 4), geometric, "o-", label="iterative, geometric (3 rounds)")
ax_rounds.plot(range(1, 4), linear, "s-", label="iterative, linear (3 rounds)")
ax_rounds.plot(range(1, 11), lottery_targets, "^-", label="lottery, p = 0.2")
ax_rounds.set_xlabel("round")
ax_rounds.set_ylabel("sparsity after the round")
ax_rounds.legend(loc="lower right")
fig.tight_layout()
fig.savefig("04_schedules.png", dpi=100)
print("saved", os.path.abspath("04_schedules.png"))

# %% [markdown]
# ## 2. A dense baseline
#
# LeNet-300-100 on the 8×8 digits again (tutorial 02), now pruned to a harsh 98 % with
# one ranking over all layers (global scope). Every training run below uses the same recipe
# as the workflows — SGD with momentum 0.9, learning rate 0.02 decayed to 0 by a cosine — so
# the only difference between the rows of the final table is the schedule.

# %%
SPARSITY = 0.98  # from PyTorch's initialisation, one shot to 95 % already loses little
data = digits(seed=0)
test_set = (data.x_test, data.y_test)
epochs = 3 if FAST else 20       # one training run from scratch
finetune = 3 if FAST else 12     # the fine-tuning budget of the schedules that start trained


def fresh(seed: int = 0):
    """A newly initialised LeNet-300-100 for 8×8 inputs."""
    return models.lenet_300_100(in_channels=1, input_size=8, seed=seed)


dense = fresh()
fit_model(dense, data, epochs=epochs, lr=0.02)
dense_accuracy = evaluate(dense, test_set)["accuracy"]
n_weights = sum(w.size for w in prunable_weights(dense).values())
print(f"dense: {dense_accuracy:.3f} after {epochs} epochs; {n_weights:,} prunable weights, "
      f"{prune_count(n_weights, SPARSITY):,} to prune")
results = {}

# %% [markdown]
# ## 3. One-shot against iterative (Han et al. 2015)
#
# Both start from the trained network and get the same fine-tuning budget: one-shot spends
# it all after a single pruning to 98 %; iterative splits it over three rounds of
# prune → fine-tune at the geometric targets, so the network adapts between the cuts.

# %%
results["one-shot"] = workflows.oneshot(clone_model(dense), data, sparsity=SPARSITY,
                                        scope="global", finetune_epochs=finetune)
results["iterative"] = workflows.iterative(clone_model(dense), data, sparsity=SPARSITY,
                                           rounds=3, scope="global",
                                           finetune_epochs=finetune // 3)
for r in results["iterative"]["rounds"]:
    print(f"round {r['round']}: target {r['target']:.4f}, reached {r['sparsity']:.4f}, "
          f"accuracy {r['accuracy_pruned']:.3f} pruned → {r['accuracy_finetuned']:.3f} fine-tuned")
print(f"one-shot: {results['one-shot']['accuracy_before_finetune']:.3f} pruned → "
      f"{results['one-shot']['accuracy_after_finetune']:.3f} fine-tuned")
assert [r["target"] for r in results["iterative"]["rounds"]] == iterative_sparsities(SPARSITY, 3)
assert (results["iterative"]["accuracy_after_finetune"]
        > results["one-shot"]["accuracy_after_finetune"])  # rounds beat a single cut

# %% [markdown]
# ## 4. Gradual pruning during training (Zhu & Gupta 2017)
#
# Gradual pruning is a callback: `fit` calls it after every optimizer step, and at the update
# steps of the schedule it prunes to $s_t$ — the workflow does exactly this:
#
# ```python
# schedule = Gradual(initial_sparsity=0.0, final_sparsity=0.98, begin_step=0,
#                    num_steps=n, frequency=dt)
# pruner = Pruner(model, "magnitude", scope="global", schedule=schedule)
# fit(model, train, optimizer, epochs, step_callback=pruner.on_step)
# ```
#
# Here it starts from the trained network, like the two above, with the same budget. By
# default it updates every quarter epoch and reaches $s_f$ after three quarters of the run,
# so the last quarter trains at the final sparsity. The record keeps every pruning step; at
# each, exactly $\lfloor s_t N + \tfrac12\rfloor$ of the $N$ weights are zero.

# %%
results["gradual"] = workflows.gradual(clone_model(dense), data, sparsity=SPARSITY,
                                       scope="global", finetune_epochs=finetune)
g = results["gradual"]
n_steps = (g["end_step"] - g["begin_step"]) // g["frequency"]
print(f"pruned at steps {g['begin_step']}..{g['end_step']} every {g['frequency']} "
      f"of {g['total_steps']}")
shown = sorted(set(range(0, len(g["history"]), max(1, len(g["history"]) // 6)))
               | {len(g["history"]) - 1})
for entry in (g["history"][i] for i in shown):
    print(f"  step {entry['step']:4d}: target {entry['target']:.4f}, "
          f"reached {entry['sparsity']:.4f}")
for entry in g["history"]:
    expected = polynomial_sparsity(entry["step"], 0.0, SPARSITY, g["begin_step"], n_steps,
                                   g["frequency"])
    assert entry["target"] == expected
    assert entry["sparsity"] == prune_count(n_weights, expected) / n_weights  # exactly k
assert g["history"][-1]["target"] == SPARSITY
print(f"gradual: {g['accuracy_after_finetune']:.3f} (one-shot "
      f"{results['one-shot']['accuracy_after_finetune']:.3f}, same epochs)")
assert g["accuracy_after_finetune"] > results["one-shot"]["accuracy_after_finetune"]

# %% [markdown]
# ## 5. Pruning at initialisation: SNIP (Lee et al. 2019)
#
# Can the mask be chosen before any training? SNIP scores each connection by its effect on
# the loss through a multiplicative gate $c_j$ on $w_j$, at $c = 1$:
#
# $$s_j = \frac{\lvert \partial L / \partial c_j \rvert}
#            {\sum_k \lvert \partial L / \partial c_k\rvert}
#   = \frac{\lvert w_j\, g_j \rvert}{\sum_k \lvert w_k\, g_k \rvert},$$
#
# from a single batch, normalised over the whole network and pruned globally. By hand, on a
# fresh network, then with the workflow — which must find the same mask:

# %%
untrained = fresh()
grads = gradients(untrained, (data.x_train, data.y_train), batch_size=64, num_batches=1)
weights = prunable_weights(untrained)
snip_scores = snip(weights, {name: grads[name] for name in weights})
snip_masks, snip_report = global_topk_masks(snip_scores, SPARSITY)
print(f"Σ SNIP scores = {sum(s.sum() for s in snip_scores.values()):.6f}")
print(snip_report)
assert np.isclose(sum(s.sum() for s in snip_scores.values()), 1.0)

snip_model = fresh()
results["SNIP at init"] = workflows.at_init(snip_model, data, criterion="snip",
                                            sparsity=SPARSITY, finetune_epochs=epochs)
results["random at init"] = workflows.at_init(fresh(), data, criterion="random",
                                              sparsity=SPARSITY, finetune_epochs=epochs)
assert all(np.array_equal(snip_masks[name], mask) for name, mask in model_masks(snip_model).items())
print(f"trained {epochs} epochs under the mask: SNIP "
      f"{results['SNIP at init']['accuracy_after_finetune']:.3f}, random "
      f"{results['random at init']['accuracy_after_finetune']:.3f}")
assert (results["SNIP at init"]["accuracy_after_finetune"]
        > results["random at init"]["accuracy_after_finetune"])

# %% [markdown]
# ## 6. Lottery tickets (Frankle & Carbin 2019)
#
# The lottery ticket hypothesis: a randomly initialised network contains a subnetwork that,
# trained *from the same initial values*, matches the full network. To find it, train, prune
# $p$ of the remaining weights by magnitude, and **rewind** the survivors to their initial
# values $\theta_0$:
#
# $$m_r = \text{prune}(\theta_{\text{trained}}, m_{r-1}),
#   \qquad \theta \leftarrow \theta_0 \odot m_r .$$
#
# One round by hand: the survivors are exactly their initial values, and the kept count is
# $n - \lfloor p\, n + \tfrac12\rfloor$.

# %%
ticket = fresh()
theta_0 = snapshot(ticket)
fit_model(ticket, data, epochs=epochs, lr=0.02)
prune_round(ticket, rate=0.2, round=1, scope="global")
rewind(ticket, theta_0)
masks = model_masks(ticket)
kept_count = sum(int(m.sum()) for m in masks.values())
for name, p in ticket.named_parameters():
    if name in masks:
        assert np.array_equal(p.data, theta_0[name] * masks[name])  # survivors = θ₀, rest 0
assert kept_count == n_weights - prune_count(n_weights, 0.2)
print(f"round 1: {kept_count:,} of {n_weights:,} weights kept, each at its initial value")

# %% [markdown]
# The workflow runs $R = 10$ rounds at the rate that reaches 98 %,
# $p = 1 - (1 - 0.98)^{1/10} \approx 32\,\%$, then trains the ticket. The paper's control is
# the same mask on a *new* random initialisation: if the ticket wins, the initial values
# matter, not only the connections.

# %%
rounds = 10
lt_model = fresh()
results["lottery ticket"] = workflows.lottery(lt_model, data, sparsity=SPARSITY, rounds=rounds,
                                              scope="global", finetune_epochs=epochs)
lt = results["lottery ticket"]
p = lt["rate"]
print(f"rate p = 1 − (1 − {SPARSITY})^(1/{rounds}) = {p:.4f}")
assert np.isclose(p, 1 - (1 - SPARSITY) ** (1 / rounds))
for r in lt["rounds"]:
    print(f"round {r['round']:2d}: kept {1 - r['sparsity']:.4f} (target (1−p)^k = "
          f"{(1 - p) ** r['round']:.4f}), trained accuracy {r['accuracy_trained']:.3f}")
    assert abs((1 - r["sparsity"]) - (1 - p) ** r["round"]) <= 0.5 / n_weights + 1e-12

reinit = fresh(seed=1)                    # other initial values, the ticket's mask
attach_masks(reinit, model_masks(lt_model))
fit_model(reinit, data, epochs=epochs, lr=0.02)
results["ticket mask, new init"] = {"accuracy_after_finetune":
                                    evaluate(reinit, test_set)["accuracy"],
                                    "sparsity_reached": lt["sparsity_reached"]}
print(f"ticket {lt['accuracy_after_finetune']:.3f} vs the same mask re-initialised "
      f"{results['ticket mask, new init']['accuracy_after_finetune']:.3f}")
print(f"the rewound ticket before any training: {lt['accuracy_rewound']:.3f} (chance is 0.1)")
assert (lt["accuracy_after_finetune"]
        > results["ticket mask, new init"]["accuracy_after_finetune"])

# %% [markdown]
# The last line is worth a second look: the rewound ticket, *before any training* — initial
# values, nothing learnt — is far above chance. The mask alone carries much of the solution,
# as Zhou et al. (2019, "Deconstructing Lottery Tickets: Zeros, Signs, and the Supermask")
# observed.

# %%
assert lt["accuracy_rewound"] > 0.3

# %% [markdown]
# ## 7. All schedules at 98 %
#
# The training column counts epochs from a random initialisation to the final network. The
# comparison is fair in sparsity, network and recipe, not in cost: the lottery ticket needed
# eleven training runs to find.

# %%
training_epochs = {"one-shot": epochs + finetune, "iterative": epochs + 3 * (finetune // 3),
                   "gradual": epochs + finetune, "SNIP at init": epochs,
                   "random at init": epochs, "lottery ticket": (rounds + 1) * epochs,
                   "ticket mask, new init": epochs}
print(f"{'schedule':<22} {'training epochs':>15} {'sparsity':>9} {'accuracy':>9}")
print(f"{'dense':<22} {epochs:>15} {0.0:9.4f} {dense_accuracy:9.3f}")
for name, record in results.items():
    print(f"{name:<22} {training_epochs[name]:>15} {record['sparsity_reached']:9.4f} "
          f"{record['accuracy_after_finetune']:9.3f}")
    assert abs(record["sparsity_reached"] - SPARSITY) <= 0.5 / n_weights + 1e-12

# %% [markdown]
# ## Summary
#
# - A schedule is a sequence of targets. Zhu & Gupta's cubic starts at exactly $s_i$, ends
#   at exactly $s_f$ and takes ever smaller steps; iterative rounds keep the same fraction of
#   the survivors each time (geometric) or add equal steps (linear); lottery rounds keep
#   $(1 - p)^k$ after $k$ rounds.
# - At the same sparsity and fine-tuning budget, pruning in rounds with training in between
#   (iterative, gradual) beats cutting everything at once.
# - SNIP picks a mask before training from one batch's $\lvert w\, g\rvert$, and trains far
#   better than a random mask of the same sparsity.
# - A lottery ticket — the mask found by iterative magnitude pruning, with the survivors
#   rewound to their initial values — trains better than the same mask on new initial
#   values; the search costs many training runs.
#
# ## Exercises
#
# 1. Build the gradual run of section 4 yourself from its sketch, with `Gradual(...,
#    power=1)` and `power=6` instead of the cubic. Which prunes too fast for training to
#    follow?
# 2. Run the iterative workflow with `kind="linear"`. Which rounds cost the most accuracy?
# 3. Rewind late instead of to initialisation (`rewind_step` in `workflows.lottery`, Frankle
#    et al. 2019, "Stabilizing the Lottery Ticket Hypothesis"): rewind to step 50, 200. Does
#    the ticket improve?
# 4. Score SNIP from 10 batches instead of one (`grads_batches` in `workflows.at_init`). Does
#    the mask change much? Compare the two masks' overlap.
