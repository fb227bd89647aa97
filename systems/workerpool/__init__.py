"""CPU-bound work behind a pool: the kernels every implementation runs, and the Python pools."""
