"""Channel groups: which output channels of which layers must be removed together.

A residual block y = body(x) + shortcut(x) ties channels: channel c of y is the sum of
channel c of the body's last layer and of the shortcut, so removing filter c from only one
of them leaves channel c alive. Every producer writing into one stream of channels loses
channel c with the others, and every layer reading it loses its input channel c: a
**channel group** (the dependency graph of Torch-Pruning, Fang et al. 2023, restricted to
the layers here). ``channel_groups`` labels every tensor of channels in one walk, merges the
labels of the two terms of each sum (union-find) and refuses, naming it, a layer it cannot
follow channels through.

>>> from nnprune import nn
>>> block = nn.Residual(nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)))
>>> model = nn.Sequential(nn.Conv2d(1, 4, 3), block, nn.ReLU(), nn.Flatten(), nn.Linear(16, 2))
>>> [(g.producers, g.consumers) for g in channel_groups(model) if g.fixed is None]
[(('0', '1.body.0'), (('1.body.0', 1), ('4', 4)))]
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nnprune.prune.surgery.routes import ELEMENTWISE, POOLS, PRODUCERS

PASS_THROUGH = ELEMENTWISE + POOLS


@dataclass(frozen=True)
class ChannelGroup:
    """Channels removed together, named by the first of the ``producers`` (Conv2d / Linear)
    whose output units they are; the ``norms`` scale them, the ``consumers`` read them
    ((layer, inputs per channel: H'·W' for a Linear after a Flatten, else 1)); ``fixed``: why
    the group cannot be pruned ("the model's input", "the model's output"), or None.
    """

    name: str
    width: int
    producers: tuple[str, ...]
    norms: tuple[str, ...]
    consumers: tuple[tuple[str, int], ...]
    fixed: str | None = None


@dataclass
class _Space:
    """One label of channels while walking: who writes them, who scales and reads them."""

    width: int | None
    producers: list[str] = field(default_factory=list)
    norms: list[str] = field(default_factory=list)
    consumers: list[tuple[str, int]] = field(default_factory=list)
    fixed: str | None = None


class _Walk:
    """Union-find over channel labels, filled by one pass over the model."""

    def __init__(self) -> None:
        self.spaces: list[_Space] = []
        self.parent: list[int] = []

    def new(self, width: int | None, fixed: str | None = None) -> int:
        self.spaces.append(_Space(width, fixed=fixed))
        self.parent.append(len(self.parent))
        return len(self.parent) - 1

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int, where: str) -> int:
        a, b = self.find(a), self.find(b)
        if a == b:
            return a
        sa, sb = self.spaces[a], self.spaces[b]
        if None not in (sa.width, sb.width) and sa.width != sb.width:
            raise ValueError(f"Residual {where!r} adds {sa.width} channels of its body to "
                             f"{sb.width} of its shortcut")
        self.parent[b] = a
        sa.width = sa.width if sa.width is not None else sb.width
        sa.producers += sb.producers
        sa.norms += sb.norms
        sa.consumers += sb.consumers
        sa.fixed = sa.fixed or sb.fixed
        return a

    def step(self, module: Any, name: str, space: int, flat: bool) -> tuple[int, bool]:
        """The label (and whether it is flattened) after ``module``, given the one before."""
        kind = type(module).__name__
        s = self.spaces[self.find(space)]
        if kind == "Sequential":
            for child, sub in module._modules.items():
                space, flat = self.step(sub, f"{name}.{child}" if name else child, space, flat)
            return space, flat
        if kind == "Residual":
            body, _ = self.step(module.body, f"{name}.body", space, flat)
            skip = space if module.shortcut is None else \
                self.step(module.shortcut, f"{name}.shortcut", space, flat)[0]
            return self.union(body, skip, name), flat
        if kind in PRODUCERS:
            reads = module.in_channels if kind == "Conv2d" else module.in_features
            spatial = 1
            if s.width is not None:
                spatial, extra = divmod(reads, s.width)
                if extra or spatial < 1 or (not flat and spatial != 1):
                    raise ValueError(f"layer {name!r} ({kind}) reads {reads} inputs, not a "
                                     f"whole number per each of the {s.width} channels before it")
            s.consumers.append((name, spatial))
            out = self.new(module.out_channels if kind == "Conv2d" else module.out_features)
            self.spaces[out].producers.append(name)
            return out, False
        if kind in ("BatchNorm2d", "BatchNorm1d") and not flat:
            s.norms.append(name)
            return space, flat
        if kind == "Flatten":
            return space, True
        if kind in PASS_THROUGH:
            return space, flat
        raise ValueError(f"cannot follow channels through layer {name!r} ({kind}): structured "
                         f"surgery knows Conv2d, Linear, BatchNorm, {', '.join(PASS_THROUGH)}, "
                         f"Flatten, Sequential and Residual")


def channel_groups(model: Any) -> list[ChannelGroup]:
    """Every channel group of ``model`` (a Sequential, possibly of Residual blocks), in the
    order of their first producer; see the module doc."""
    if type(model).__name__ != "Sequential":
        raise TypeError(f"channel groups need an nnprune.nn.Sequential, got "
                        f"{type(model).__name__}")
    walk = _Walk()
    start = walk.new(None, fixed="the model's input")
    end, _ = walk.step(model, "", start, False)
    walk.spaces[walk.find(end)].fixed = "the model's output"
    order = {name: k for k, (name, _) in enumerate(model.named_modules())}
    groups = []
    for i in sorted({walk.find(i) for i in range(len(walk.parent))}):
        s = walk.spaces[i]
        if not s.producers:
            continue  # the input alone: nothing to remove
        producers = tuple(sorted(s.producers, key=order.get))
        groups.append(ChannelGroup(producers[0], int(s.width), producers,
                                   tuple(sorted(s.norms, key=order.get)),
                                   tuple(sorted(s.consumers, key=lambda c: order[c[0]])),
                                   s.fixed))
    return sorted(groups, key=lambda g: order[g.name])


def prunable_groups(model: Any, exclude: tuple[str, ...] = ()) -> list[ChannelGroup]:
    """The groups that may lose channels: not the model's input or output, and no producer's
    weight in ``exclude``."""
    return [g for g in channel_groups(model) if g.fixed is None
            and not any(f"{p}.weight" in exclude for p in g.producers)]


def has_residual(model: Any) -> bool:
    """Whether ``model`` holds a Residual block anywhere (then surgery needs groups). An
    object without ``modules()`` has none: the caller's own checks say what it is."""
    modules = getattr(model, "modules", None)
    return callable(modules) and any(type(m).__name__ == "Residual" for m in modules())
