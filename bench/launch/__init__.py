"""Processes on CPU sets, readiness and conformance through probes, and the run's topology."""
