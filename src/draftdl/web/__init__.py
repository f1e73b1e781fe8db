"""The dashboard: plain HTML, CSS and ES modules served from the package (no build step)."""
