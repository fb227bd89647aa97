"""What is measured beside the load: process CPU/RSS, the system's Prometheus metrics, the host."""
