"""Network slimming (Liu et al. 2017, "Learning Efficient Convolutional Networks through
Network Slimming"): sparsify BatchNorm scales while training, cut the channels they close.

Every channel c after a convolution passes a BatchNorm y_c = γ_c x̂_c + β_c, so γ_c is a
gate on the channel. Training with an L1 penalty on all of them,

    L' = L + λ Σ_c |γ_c|,      one SGD step: γ ← γ − η (∂L/∂γ + λ sign γ)

(the sub-gradient of |γ|, with sign 0 = 0), drives the γ of unneeded channels towards 0.
Then one **global** ranking of |γ| (criterion ``bn_gamma``) prunes a fraction p of the
channels, which ``shrink`` removes after fine-tuning. Liu et al. use λ = 10⁻⁴ (VGG, ResNet
on CIFAR) and prune 40–70 %.

>>> from nnprune import nn
>>> model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2))
>>> model[1].weight.data[...] = [0.5, -2.0]
>>> bn_l1_regularizer(1e-4)(model).item()
0.00025
"""
from __future__ import annotations

from typing import Any, Callable

from nnprune.autograd.tensor import Tensor
from nnprune.prune.finetune import _Penalty


def bn_gammas(model: Any) -> dict[str, Any]:
    """Every affine BatchNorm's γ Parameter, by parameter name (``"1.weight"``)."""
    modules = dict(model.named_modules())
    out = {}
    for name, p in model.named_parameters():
        owner = modules.get(name.rpartition(".")[0])
        if name.endswith(".weight") and type(owner).__name__ in ("BatchNorm1d", "BatchNorm2d"):
            out[name] = p
    return out


def without_gamma(model: Any, names: list[str]) -> list[str]:
    """The weights of ``names`` (Conv2d / Linear) whose channels pass no affine BatchNorm
    before they are read: slimming has no γ to rank them by, so it leaves them dense (Liu et
    al. prune the convolutions of VGG, not its BatchNorm-free classifier)."""
    from nnprune.prune.channel_criteria import following_gamma
    from nnprune.prune.surgery import has_residual, layer_configs, prunable_groups

    if has_residual(model):
        modules = dict(model.named_modules())
        bare = [g for g in prunable_groups(model)
                if not g.norms or any(modules[n].weight is None for n in g.norms)]
        return [f"{p}.weight" for g in bare for p in g.producers if f"{p}.weight" in names]
    configs, out = layer_configs(model), []
    for name in names:
        try:
            following_gamma(model, configs, name)
        except ValueError:
            out.append(name)
    return out


class _GammaPenalty(_Penalty):
    """λ Σ |γ| over every affine BatchNorm's scale."""

    def parameters(self, model: Any) -> dict[str, Any]:
        gammas = bn_gammas(model)
        if not gammas:
            raise ValueError("network slimming needs BatchNorm layers with a scale γ "
                             "(affine=True); the model has none")
        return gammas


def bn_l1_regularizer(strength: float) -> Callable[[Any], Tensor]:
    """R(model) = λ Σ |γ| over every BatchNorm scale; a scalar Tensor for ``train.fit``.

    dR/dγ = λ sign(γ) (0 at γ = 0), the sub-gradient Liu et al. add to γ's gradient.
    """
    return _GammaPenalty(strength, (), 1, "bn-l1")
