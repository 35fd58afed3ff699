"""``Granularity``: the user's granularity string, parsed once.

A ``Granularity`` is a ``str`` (it compares equal to, prints and saves as the text it was
made from) that also knows what the text means: its kind, N:M's (n, m) and fixed sparsity
1 − n/m, the axes a group spans, which weight shapes it fits and which weight it spares.
``Granularity(g)`` of a ``Granularity`` returns ``g`` itself: parsing happens once.

>>> g = Granularity("2:4")
>>> g == "2:4", g.nm, g.fixed_sparsity, g.target(None)
(True, (2, 4), 0.5, 0.5)
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Mapping

from nnprune.checks import check_sparsity

GRANULARITIES = ("weight", "kernel", "filter", "channel", "neuron")
NM_TOLERANCE = 1e-9  # how far a given sparsity may be from N:M's 1 − N/M (float rounding)


def parse(text: Any) -> tuple[str, int | None, int | None]:
    """(kind, n, m) of a granularity string; n and m only for "N:M" (1 ≤ N ≤ M)."""
    if not isinstance(text, str):
        raise TypeError(f"granularity must be a string, got {text!r} of type "
                        f"{type(text).__name__}")
    if text in GRANULARITIES:
        return text, None, None
    match = re.fullmatch(r"(\d+):(\d+)", text)
    if match is None:
        raise ValueError(f"granularity must be one of {GRANULARITIES} or an 'N:M' string "
                         f"like '2:4', got {text!r}")
    n, m = int(match[1]), int(match[2])
    if not 1 <= n <= m:
        raise ValueError(f"N:M granularity needs 1 <= N <= M (N kept of every M), got {text!r}")
    return "N:M", n, m


def nm_unfit(shape: tuple[int, ...], m: int) -> str | None:
    """Why N:M groups of ``m`` along the input axis cannot be cut from ``shape``, or None."""
    if len(shape) < 2:
        return f"N:M needs a weight (O, I, ...) with >= 2 dims, got {tuple(shape)}"
    if shape[1] % m:
        return (f"N:M groups run along the input dimension I = {shape[1]} (axis 1), which is "
                f"not a multiple of m = {m}")
    return None


class Granularity(str):
    """A granularity string, parsed (see the module docstring). Immutable."""

    kind: str
    n: int | None
    m: int | None

    def __new__(cls, text: str) -> "Granularity":
        if isinstance(text, Granularity):
            return text
        kind, n, m = parse(text)
        g = super().__new__(cls, text)
        g.__dict__.update(kind=kind, n=n, m=m)
        return g

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("a Granularity cannot be changed")

    def __reduce__(self) -> tuple:
        return Granularity, (str(self),)

    @property
    def nm(self) -> tuple[int, int] | None:
        """(n, m) for "N:M", else None."""
        return None if self.n is None else (self.n, self.m)

    @property
    def is_nm(self) -> bool:
        return self.n is not None

    @property
    def groups(self) -> bool:
        """True when whole groups are ranked by a group score (kernel, filter, channel,
        neuron); "weight" ranks entries and "N:M" ranks within each run of m."""
        return self.kind in ("kernel", "filter", "channel", "neuron")

    @property
    def units(self) -> bool:
        """True for "filter" and "neuron": a group is one output unit of its layer."""
        return self.kind in ("filter", "neuron")

    @property
    def fixed_sparsity(self) -> float | None:
        """1 − n/m for "N:M" (n kept of every m), else None: the sparsity is the user's."""
        return None if self.n is None else 1 - self.n / self.m

    def target(self, sparsity: Any, name: str = "sparsity") -> float:
        """The sparsity to prune to: N:M's 1 − N/M (``sparsity`` None or within
        ``NM_TOLERANCE`` of it), otherwise ``sparsity`` itself, checked (required)."""
        fixed = self.fixed_sparsity
        if fixed is None and sparsity is None:
            raise TypeError(f"{name} is required for granularity {str(self)!r} "
                            f"(only 'N:M' fixes its own)")
        if sparsity is None:
            return fixed
        s = check_sparsity(sparsity, name)
        if fixed is not None and abs(s - fixed) > NM_TOLERANCE:
            raise ValueError(f"granularity {str(self)!r} fixes sparsity at 1 - {self.n}/"
                             f"{self.m} = {fixed:g}, got {name}={sparsity!r}; pass None or "
                             f"{fixed:g}")
        return s if fixed is None else fixed

    def unfit(self, shape: tuple[int, ...]) -> str | None:
        """Why this granularity cannot group a weight of ``shape``, or None if it can."""
        shape = tuple(shape)
        if self.kind == "weight":
            return None
        if self.kind == "kernel" and len(shape) != 4:
            return (f"kernel granularity needs a 4-D conv weight (O, I, kh, kw), got shape "
                    f"{shape}; exclude the other weights or use 'weight'")
        if self.is_nm:
            return nm_unfit(shape, self.m)
        if len(shape) < 2:
            return (f"{self.kind} granularity needs a weight with >= 2 dims (O, I, ...), "
                    f"got shape {shape}")
        return None

    def fits(self, shape: tuple[int, ...]) -> bool:
        """True when this granularity can group a weight of ``shape`` (see ``unfit``)."""
        return self.unfit(shape) is None

    def unfit_names(self, shapes: Mapping[str, tuple[int, ...]]) -> list[str]:
        """The names of ``shapes`` ({weight name: shape}) this granularity cannot group, which
        a workflow leaves dense; a ValueError naming what it needs when it fits none."""
        unfit = [name for name, shape in shapes.items() if not self.fits(shape)]
        if shapes and len(unfit) == len(shapes):  # "weight" fits every shape
            need = ("conv weights (O, I, kh, kw)" if self.kind == "kernel" else
                    f"weights whose input size I is a multiple of {self.m}" if self.is_nm else
                    "weights with >= 2 dims")
            raise ValueError(f"granularity {str(self)!r} needs {need}; none of the "
                             f"weights {', '.join(f'{n} {tuple(s)}' for n, s in shapes.items())} "
                             f"has that shape: use granularity 'weight'")
        return unfit

    def axes(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The axes one group spans, reduced to score it: () for "weight"; (2, 3) for
        "kernel"; (1, ...) for "filter"/"neuron"; (0, 2, ...) for "channel". "N:M" has no
        group score (a ValueError)."""
        if self.is_nm:
            raise ValueError(f"granularity must be one of {GRANULARITIES} here, got "
                             f"{str(self)!r}")
        reason = self.unfit(shape)
        if reason is not None:
            raise ValueError(reason)
        ndim = len(tuple(shape))
        return {"weight": (), "kernel": (2, 3), "filter": tuple(range(1, ndim)),
                "neuron": tuple(range(1, ndim)),
                "channel": (0,) + tuple(range(2, ndim))}[self.kind]

    def spares(self, names: Iterable[str]) -> dict[str, str]:
        """{name: why} for the weight this granularity leaves dense, given the prunable
        weights in model order: whole output units of the last are the classes
        (filter/neuron), whole input channels of the first are the image's (channel)."""
        names = list(names)
        if not names or self.kind not in ("filter", "neuron", "channel"):
            return {}
        if self.kind == "channel":
            return {names[0]: "its input channels are the image's"}
        return {names[-1]: "its units are the classes"}


WEIGHT = Granularity("weight")  # single entries: how scores of whole groups are ranked


def as_granularity(value: Any) -> Granularity:
    """``value`` as a ``Granularity``: itself if it is one, else parsed (a clear error)."""
    return Granularity(value)
