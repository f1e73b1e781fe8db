"""API fuzzing: Schemathesis drives every operation of our own OpenAPI document against a real
server (uvicorn on loopback, real aria2c, real downloads from the test file server).

Checks: no 5xx at all, and every answer is declared (status code, content type, body schema).
Cases come from the schema (valid and invalid data) and from the ids of real tasks in each
state, so the 200 answers are checked too. Derandomized, a fixed number of cases per
operation: the same requests on every run.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import CheckFunction
from schemathesis.errors import FailureGroup

from fileserver import FileServer
from servers import LiveServer, job, live_server, load_example, make_settings

pytestmark = [
    pytest.mark.fuzz,
    # Schemathesis's own strategies use the random module; Hypothesis warns about it once
    # (not a failure of ours, and flaky by nature: only the first call warns).
    pytest.mark.filterwarnings(
        "ignore:Do not use the `random` module inside strategies"
        ":hypothesis.errors.HypothesisDeprecationWarning"
    ),
]

# Cases per operation (fewer with a token: the same code behind one more check). 100 were
# needed to find that offset=2**63 answered 500; DRAFTDL_FUZZ_EXAMPLES=1000 for a long run.
EXAMPLES = int(os.environ.get("DRAFTDL_FUZZ_EXAMPLES", "150"))
STREAM = "GET /api/tasks/{task_id}/progress/stream"
# Never ends and takes no input but the token (tests/test_events.py and test_auth.py read it).
ENDLESS = {"GET /api/tasks/stream"}


def checks() -> list[CheckFunction]:
    names = (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
    return [getattr(schemathesis.checks, name) for name in names]


@dataclass
class FuzzReport:
    cases: Counter[str] = field(default_factory=Counter)
    statuses: Counter[tuple[str, int]] = field(default_factory=Counter)
    failures: dict[tuple[str, str], str] = field(default_factory=dict)

    def record(self, label: str, status: int, group: FailureGroup | None) -> None:
        self.cases[label] += 1
        self.statuses[(label, status)] += 1
        for failure in group.exceptions if group else ():
            self.failures.setdefault((label, failure.title), str(group))


def fuzz(
    doc: dict[str, Any],
    base_url: str,
    ids: dict[str, list[str]],
    headers: dict[str, str],
    examples: int,
) -> FuzzReport:
    """Runs in a worker thread: Schemathesis calls are blocking, the server runs in our loop.

    ``ids`` maps an operation label (or ``*``) to real task ids to try besides generated ones.
    """
    schema = schemathesis.openapi.from_dict(doc)
    report = FuzzReport()
    with requests.Session() as session:
        session.headers.update(headers)
        operations = [result.ok() for result in schema.get_all_operations()]
        operations = [op for op in operations if op.label not in ENDLESS]
        # Reads first, then what changes tasks, deleting last: the real tasks must still be
        # there for every other operation. Operations with real work behind them (a
        # retry downloads, a regenerate builds) get a fifth of the examples.
        for operation in sorted(operations, key=order):
            fuzz_operation(
                schema, operation, base_url, session, ids, budget(operation, examples), report
            )
            if operation.path == "/api/settings/limits" and operation.method.upper() == "PUT":
                session.put(  # what the fuzzer set must not slow what follows
                    f"{base_url}/api/settings/limits",
                    json={"max_overall_download_limit": "0"},
                    timeout=10,
                )
    return report


def order(operation: schemathesis.APIOperation) -> tuple[int, str]:
    rank = {"GET": 0, "PUT": 2, "DELETE": 3}.get(operation.method.upper(), 1)
    return rank, operation.path


def budget(operation: schemathesis.APIOperation, examples: int) -> int:
    if operation.method.upper() == "GET" or operation.path == "/api/tasks/submit":
        return examples
    return max(10, examples // 5)


def fuzz_operation(
    schema: schemathesis.BaseSchema,
    operation: schemathesis.APIOperation,
    base_url: str,
    session: requests.Session,
    ids: dict[str, list[str]],
    examples: int,
    report: FuzzReport,
) -> None:
    label = operation.label
    strategies = [
        operation.as_strategy(GenerationMode.POSITIVE),
        operation.as_strategy(GenerationMode.NEGATIVE),
        *schema.get_strategies_from_examples(operation),
    ]
    if "{task_id}" in operation.path:
        strategies += [
            operation.as_strategy(path_parameters={"task_id": task_id})
            for task_id in ids.get(label, ids["*"])
        ]
    to_check = checks()

    @hypothesis.settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
        suppress_health_check=list(hypothesis.HealthCheck),
    )
    @hypothesis.given(st.one_of(*strategies))
    def run(case: schemathesis.Case) -> None:
        response = case.call(base_url=base_url, session=session, timeout=10)
        try:
            case.validate_response(response, checks=to_check)
        except FailureGroup as group:
            report.record(label, response.status_code, group)
        else:
            report.record(label, response.status_code, None)

    run()


async def seed_tasks(
    live: LiveServer, fileserver: FileServer, headers: dict[str, str]
) -> dict[str, list[str]]:
    """One task in each state: completed with a draft, failed, cancelled, downloading."""
    async with live.client(**headers) as http:

        async def submit(body: dict[str, Any]) -> str:
            resp = await http.post("/api/tasks/submit", json=body)
            assert resp.status_code == 200, resp.text
            task_id: str = resp.json()["task_id"]
            return task_id

        async def wait(task_id: str, states: set[str]) -> None:
            queue = live.services.queue
            sub = queue.subscribe(task_id)
            try:
                async with asyncio.timeout(30):
                    while (await queue.get_task(task_id)).status.value not in states:
                        await sub.get()
            finally:
                queue.unsubscribe(sub)

        final = {"completed", "failed", "cancelled"}
        completed = await submit(load_example("basic-draft.json", fileserver.base_url))
        failed = await submit(job([fileserver.url("/status/404/gone.bin")]))
        cancelled = await submit(job([fileserver.url("/slow/8M/c.bin?rate=64K")]))
        running = await submit(job([fileserver.url("/slow/64M/r.bin?rate=64K")]))
        await wait(cancelled, {"downloading"})
        assert (await http.post(f"/api/tasks/{cancelled}/cancel")).status_code == 200
        for task_id in (completed, failed, cancelled):
            await wait(task_id, final)
        await wait(running, {"downloading"})
    finished = [completed, failed, cancelled]
    # A live task's stream stays open until it ends, and a long-poll of it (?wait=) waits up to
    # a minute: only finished tasks for those.
    return {"*": [*finished, running], STREAM: finished, "GET /api/tasks/{task_id}": finished}


@pytest.mark.parametrize(
    ("token", "examples"), [(None, EXAMPLES), ("fuzz-token", EXAMPLES // 3)], ids=["open", "token"]
)
async def test_every_operation_answers_as_documented(
    data_dir: Path, fileserver: FileServer, token: str | None, examples: int
) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # A long-poll waits at most 1 s here: the fuzzer's requests time out after 10.
    async with live_server(make_settings(data_dir, api_token=token, max_wait=1)) as live:
        ids = await seed_tasks(live, fileserver, headers)
        async with live.client(**headers) as http:
            doc = (await http.get("/openapi.json")).json()
        report = await asyncio.to_thread(fuzz, doc, live.base_url, ids, headers, examples)
    operations = {f"{m.upper()} {p}" for p, ops in doc["paths"].items() for m in ops}
    assert set(report.cases) == operations - ENDLESS and operations >= ENDLESS
    assert all(n >= min(examples, 10) for n in report.cases.values()), report.cases
    print(f"\nfuzz: {sum(report.cases.values())} cases over {len(operations)} operations")
    for (label, status), n in sorted(report.statuses.items()):
        print(f"  {label} → {status}: {n}")
    assert not report.failures, "\n".join(report.failures.values())
    # The real tasks were reached, not only unknown ids.
    assert report.statuses[("GET /api/tasks/{task_id}/draft.zip", 200)] > 0
    assert report.statuses[("GET /api/tasks/{task_id}", 200)] > 0
