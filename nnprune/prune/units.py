"""``mask_units`` and ``dead_units`` of ``nnprune.prune.surgery.units``."""
from nnprune.prune.surgery.units import dead_units, mask_units

__all__ = ["dead_units", "mask_units"]
