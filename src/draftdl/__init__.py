"""draftdl: downloads the media of JianYing draft jobs through a managed aria2c."""

__version__ = "0.1.0"
