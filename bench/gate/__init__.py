"""Comparing runs and gating revisions: compare, gate, history, selfcheck."""
