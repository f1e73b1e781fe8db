"""The task model, below every layer that uses it: tasks, files and their states."""
