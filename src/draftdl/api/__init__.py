"""HTTP: routes, dependencies and the mapping of our errors to status codes."""
