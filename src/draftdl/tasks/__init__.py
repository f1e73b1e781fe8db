"""Tasks: validation, file planning, scheduling and the download monitor."""
