"""`patternbench soak`: a fault-injection campaign over short runs of the harness itself.

bench/cli.py adds the subcommand with `add_parser(subparsers)`; its function is `cmd_soak(args,
parts)`. Importing this package loads only the flags (bench/soak/options.py); the campaign's
modules load when it runs.
"""

from bench.soak.options import add_parser, cmd_soak

__all__ = ["add_parser", "cmd_soak"]
