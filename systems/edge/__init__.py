"""The edge pattern's Python parts: an OTLP trace sink for tests, and the reader of its file."""
