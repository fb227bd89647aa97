"""Pure statistics: percentiles, intervals, summaries, SLOs, generator headroom. No I/O."""
