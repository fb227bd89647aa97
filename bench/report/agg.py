"""pyplot on the Agg backend (PNG files, never a window), imported inside the functions that draw:
matplotlib takes a second or more to import, which a command that draws nothing should not pay."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

from matplotlib import pyplot as plt

__all__ = ["plt"]
