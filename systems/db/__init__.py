"""The db pattern: a service whose cost is its database (README.md)."""
