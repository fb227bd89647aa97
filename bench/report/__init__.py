"""report.md, report.html and the plots of a run; study sections are handed in."""
