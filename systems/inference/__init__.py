"""The inference pattern: a torch model served with dynamic batching vs none."""
