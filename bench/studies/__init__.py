"""In-process studies, one module per kind, each with its report section."""
