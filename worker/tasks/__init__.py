"""Celery tasks, one module per domain; every task has an explicit name."""
