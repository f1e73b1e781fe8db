"""More than one node on one PostgreSQL: the queue that hands tasks to workers (jobs.py),
the claims that say which worker holds a task (claims.py) and a worker's part (worker.py)."""
