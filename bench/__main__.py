"""`python -m bench` is the `patternbench` command."""

from bench.cli import main

raise SystemExit(main())
