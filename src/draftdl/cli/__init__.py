"""The ``draftdl`` command."""
