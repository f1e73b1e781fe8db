"""When a failed file is tried again: one rule, from the failure's reason (aria2/models.py).

A transient failure (refused, reset or timed-out connections, a stall, 5xx, 429, and 401/403,
which signed links answer for a while) is tried again up to ``max_retries`` times, after
``retry_base`` seconds doubling each time up to ``retry_max_delay``, with jitter so many files
failed by one outage do not all come back at once. A permanent one (404, 410, a full disk, a
body that is not what was asked) fails the file at once.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from draftdl.aria2.models import Reason
from draftdl.model.task import FileState, utcnow
from draftdl.settings import Settings

_jitter = random.Random()


def next_retry(f: FileState, reason: Reason, settings: Settings) -> datetime | None:
    """When ``f`` (failed with ``reason`` after ``f.attempts`` tries) is tried again; None
    when it is not."""
    if not reason.transient or f.attempts > settings.max_retries:
        return None
    delay = min(settings.retry_max_delay, settings.retry_base * 2 ** max(0, f.attempts - 1))
    return utcnow() + timedelta(seconds=delay * _jitter.uniform(0.75, 1.0))
