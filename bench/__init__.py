"""patternbench: a benchmark and load-testing harness for service patterns.

The CLI (`bench.cli`) is the composition root: it reads the catalog (`bench.catalog`), runs
patterns (`bench.runner`) through the launcher, the load engine and the collectors, stores a
versioned result (`bench.results`) and renders reports (`bench.report`).
"""

__version__ = "0.1.0"
