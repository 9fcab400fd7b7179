"""Host-side tools called by the Makefile (``python -m tools.<name>`` from the repository root)."""
