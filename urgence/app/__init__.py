"""User-facing application: command line, web console, call log."""
