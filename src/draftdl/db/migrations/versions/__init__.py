"""Alembic revisions, oldest first: 0001 is the baseline (baseline.py), each later one a step."""
