"""Load scenarios: locustfiles (`scenarios/locust/`) and pyperf scripts (`scenarios/pyperf/`)."""
