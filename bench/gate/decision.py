"""The gate's decision knobs and their defaults, apart from the statistics so that the command line
shows them without importing scipy (`bench.gate.compare` decides)."""

from __future__ import annotations

from typing import Final

#: The false discovery rate over a gate's comparisons.
ALPHA: Final = 0.05
#: The smallest change worth calling: 0.05 is 5%.
MIN_EFFECT: Final = 0.05
