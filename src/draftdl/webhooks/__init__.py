"""Webhooks: signed status events POSTed to clients, delivered at least once from an outbox."""
