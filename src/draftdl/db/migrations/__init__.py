"""The schema's history as Alembic revisions (``versions/``), run by db/schema.py at start.

Alembic is driven from code only: there is no alembic.ini, and env.py takes the connection
(already in its transaction) from ``config.attributes``.
"""
