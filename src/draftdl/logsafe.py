"""Secrets out of the logs: a ``?token=`` value (SSE, Socket.IO polling, the docs) and any
``Authorization`` value are written as ``***``.

uvicorn's access logger passes the request line in ``record.args`` (client, method, path with
its query, HTTP version, status), so the filter rewrites the arguments, not only the message.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from urllib.parse import unquote_plus

ACCESS_LOGGER = "uvicorn.access"
MASK = "***"

QUERY_PAIR = re.compile(r"([?&;])([^=&;#\s\"']+)=([^&;#\s\"']*)")
TOKEN_KEYS = frozenset({"token", "access_token", "api_token"})
AUTHORIZATION = re.compile(
    r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?)((?:bearer|basic|token)\s+)?[^\s\"',;&]+"
)


def _mask_pair(match: re.Match[str]) -> str:
    # The key as the server reads it: "%74oken" is "token" too.
    if unquote_plus(match[2]).lower() in TOKEN_KEYS:
        return f"{match[1]}{match[2]}={MASK}"
    return match[0]


def redact(text: str) -> str:
    text = QUERY_PAIR.sub(_mask_pair, text)
    return AUTHORIZATION.sub(lambda m: f"{m[1]}{m[2] or ''}{MASK}", text)


def _clean(value: object) -> object:
    return redact(value) if isinstance(value, str) else value


class RedactSecrets(logging.Filter):
    """Rewrites tokens in a record's message and arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: _clean(arg) for key, arg in record.args.items()}
        return True


def install_access_log_filter(name: str = ACCESS_LOGGER) -> None:
    """Once per logger, however many apps are created in the process."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
