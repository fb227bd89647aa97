"""pytest-benchmark suites: micro-benchmarks run by a study, one file per benchmark."""
