"""Storage: the source of truth for tasks across restarts."""
