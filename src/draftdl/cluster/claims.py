"""Claims: which worker holds a task, and the number every write of the task's state carries.

A claim sets ``owner``, adds one to ``attempt`` and sets ``lease_until``; the holder renews it
(one statement for all its tasks) and every write of the task's state matches ``attempt``
(db/repo.py), so a worker paused past its lease writes nothing once another has claimed the
task: it learns at its next renewal, which does not return the task, and lets it go. All the
lease arithmetic is the database's clock (``now()``), never a node's.
"""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Connection, text

CLAIM = text(
    """
    UPDATE tasks
       SET owner = :node, attempt = attempt + 1, lease_until = now() + CAST(:lease AS interval)
     WHERE id = :task_id AND status IN ('pending', 'downloading', 'processing')
       AND (owner IS NULL OR lease_until IS NULL OR lease_until < now() OR owner = :node)
    RETURNING attempt
    """
)
RENEW = text(
    """
    UPDATE tasks AS t SET lease_until = now() + CAST(:lease AS interval)
      FROM (SELECT unnest(CAST(:ids AS text[])) AS id, unnest(CAST(:attempts AS int[])) AS attempt)
           AS mine
     WHERE t.id = mine.id AND t.attempt = mine.attempt AND t.owner = :node
    RETURNING t.id
    """
)
# Unfinished, not paused, held by nobody (or by a claim that ran out), without a waiting job.
ORPHANS = text(
    """
    SELECT id, priority FROM tasks
     WHERE status IN ('pending', 'downloading', 'processing')
       AND (owner IS NULL OR lease_until IS NULL OR lease_until < now())
       AND NOT EXISTS (SELECT 1 FROM pgqueuer AS q WHERE q.dedupe_key = tasks.id)
     ORDER BY priority DESC, seq
     LIMIT :limit
    """
)
SEEN = text(
    """
    UPDATE nodes SET seen_at = now() WHERE name = :node
    """
)
TAKE_NAME = text(
    """
    INSERT INTO nodes (name, role, token, started_at, seen_at)
    VALUES (:node, :role, :token, now(), now())
    ON CONFLICT (name) DO UPDATE SET started_at = now(), seen_at = now(), role = :role,
                                     token = :token
     WHERE nodes.seen_at < now() - CAST(:stale AS interval) OR nodes.token = :token
    RETURNING name
    """
)


MINE = text(
    """
    SELECT id FROM tasks
     WHERE owner = :node AND status IN ('pending', 'downloading', 'processing')
     ORDER BY priority DESC, seq
    """
)
RELEASE = text(
    """
    UPDATE tasks SET owner = NULL, lease_until = NULL
     WHERE owner = :node AND status IN ('pending', 'downloading', 'processing')
    RETURNING id, priority
    """
)
LEAVE = text("DELETE FROM nodes WHERE name = :node")


def claim(conn: Connection, task_id: str, node: str, lease: timedelta) -> int | None:
    """The task for ``node``: its new attempt number, or None when it is finished, paused or
    held by a live claim of another node."""
    found = conn.execute(CLAIM, {"task_id": task_id, "node": node, "lease": lease}).scalar()
    return None if found is None else int(found)


def renew(conn: Connection, node: str, mine: dict[str, int], lease: timedelta) -> set[str]:
    """Renews the claims ``mine`` (task id → attempt); the ids still held (the others are
    lost: another node claimed them, or they were deleted). The node is seen, too."""
    conn.execute(SEEN, {"node": node})
    if not mine:
        return set()
    ids = list(mine)
    params = {"ids": ids, "attempts": [mine[i] for i in ids], "node": node, "lease": lease}
    return set(conn.execute(RENEW, params).scalars())


def orphans(conn: Connection, limit: int = 500) -> list[tuple[str, int]]:
    return [(row.id, row.priority) for row in conn.execute(ORPHANS, {"limit": limit})]


def take_name(conn: Connection, node: str, role: str, token: str, stale: timedelta) -> bool:
    """Registers ``node``; False when a node of that name was seen within ``stale`` with
    another ``token`` (two live processes must not share a name: a claim's ``owner = :node``
    branch trusts it). The token is kept in the node's data folder, which one process at a
    time holds: the same token is the same node started again (its old process is gone)."""
    params = {"node": node, "role": role, "token": token, "stale": stale}
    return conn.execute(TAKE_NAME, params).first() is not None


def held_by(conn: Connection, node: str) -> list[str]:
    """The unfinished tasks whose claim names ``node`` (live or run out)."""
    return [str(task_id) for task_id in conn.execute(MINE, {"node": node}).scalars()]


def release_all(conn: Connection, node: str) -> list[tuple[str, int]]:
    """Lets go of every claim of ``node`` (a clean stop); the node's name is free again."""
    released = [(row.id, row.priority) for row in conn.execute(RELEASE, {"node": node})]
    conn.execute(LEAVE, {"node": node})
    return released
