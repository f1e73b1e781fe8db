"""The signing secret: the ``webhook_secret`` setting, or one made once and kept in the data
folder (0600), so receivers can keep verifying across restarts."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from standardwebhooks.webhooks import Webhook

PREFIX = "whsec_"
FILE = "webhook_secret"


def check_secret(secret: str) -> str:
    """Raises ``ValueError`` unless ``whsec_<base64>`` of at least 24 bytes."""
    if not secret.startswith(PREFIX):
        raise ValueError("must be in the form whsec_<base64>")
    try:
        raw = base64.b64decode(secret[len(PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("the part after whsec_ is not base64") from None
    if len(raw) < 24:
        raise ValueError("must hold at least 24 random bytes (32 recommended)")
    Webhook(secret)  # the library takes it as well
    return secret


def load_or_create(data_dir: Path) -> str:
    """Blocking (files): run in a thread."""
    path = data_dir / FILE
    if path.exists():
        return check_secret(path.read_text(encoding="ascii").strip())
    secret = PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(secret + "\n")
    os.replace(tmp, path)
    return secret
