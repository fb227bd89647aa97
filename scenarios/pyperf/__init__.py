"""pyperf scripts: micro-benchmarks of the systems' in-process parts, one file per benchmark."""
