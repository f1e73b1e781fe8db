"""Live events: one bus that fans task events out to every subscriber."""
