"""Load engines behind one protocol: loadgen (Go, open-loop) and Locust (+ its recording hook)."""
