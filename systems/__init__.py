"""Reference systems measured by patternbench (never import the harness from here)."""
