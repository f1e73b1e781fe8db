"""The web dashboard at ``/`` in a real browser (the system's Chromium, headless, through
Playwright) against a real server, aria2c and file server: the list follows the all-tasks
stream live, the detail shows files and steers the task with its buttons, submissions show
their 422s at their paths, a token is asked for once, bulk actions, settings and health, two
languages, a phone-sized screen, a server restart, and no request to any other host.

Screenshots go to ``test-artifacts/``; with ``DRAFTDL_UPDATE_SCREENSHOT=1`` the dashboard's
also to ``docs/dashboard.png`` (committed, shown in the README).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import time
import zipfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright, expect

from fileserver import FileServer
from servers import (
    LiveServer,
    ServerProcess,
    job,
    live_server,
    make_settings,
    wait_on_queue,
)

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
DOCS_SHOT = ROOT / "docs" / "dashboard.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "dashboard-token-for-tests"
WAIT = 20_000  # ms: the longest a UI expectation waits
FINAL = {"completed", "failed", "cancelled"}

View = dict[str, Any]
NEWER, OLDER = (
    "\N{SINGLE LEFT-POINTING ANGLE QUOTATION MARK} Newer",
    "Older \N{SINGLE RIGHT-POINTING ANGLE QUOTATION MARK}",
)


def shown(first: int, last: int, total: int) -> str:
    """The pager's range, as the page words it."""
    return f"{first}\N{EN DASH}{last} of {total}"


# -- harness ---------------------------------------------------------------------------------


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A fresh Chromium per test (its own temporary profile)."""
    assert Path(CHROMIUM).exists(), "the browser tests need Chromium (apt-get install chromium)"
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield chromium
        finally:
            await chromium.close()


@pytest.fixture
async def server(data_dir: Path, fileserver: FileServer) -> AsyncIterator[LiveServer]:
    async with live_server(make_settings(data_dir)) as live:
        yield live


@dataclass
class Dash:
    """A browser page on the dashboard, with every request it made and every script error."""

    page: Page
    base: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    async def open(self, route: str = "#/") -> None:
        await self.page.goto(f"{self.base}/{route}")

    def row(self, task_id: str) -> Any:
        return self.page.locator(f'li.task-row[data-task-id="{task_id}"]')

    def button(self, name: str) -> Any:
        return self.page.get_by_role("button", name=name, exact=True)

    async def shot(self, name: str, *, docs: bool = False) -> Path:
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        if docs and os.environ.get("DRAFTDL_UPDATE_SCREENSHOT") == "1":
            DOCS_SHOT.parent.mkdir(exist_ok=True)
            DOCS_SHOT.write_bytes(path.read_bytes())
        return path


@contextlib.asynccontextmanager
async def dashboard(browser: Browser, base: str, **context_options: Any) -> AsyncIterator[Dash]:
    """A new context (cookies, storage) and page; at the end, no request may have gone to
    another host and no script may have failed (a CSP refusal counts)."""
    options: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}, "locale": "en-US"}
    context: BrowserContext = await browser.new_context(**{**options, **context_options})
    page = await context.new_page()
    dash = Dash(page, base)
    page.on("request", lambda request: dash.requests.append(request.url))
    page.on("pageerror", lambda error: dash.errors.append(f"page error: {error}"))

    def console(message: Any) -> None:
        text = message.text
        if "Content Security Policy" in text or (
            message.type == "error" and "Failed to load" not in text
        ):
            dash.errors.append(f"console: {text}")

    page.on("console", console)
    try:
        yield dash
    finally:
        await context.close()
    # blob: URLs of the server's origin are objects in the page's own memory (ReDoc's worker,
    # a downloaded zip), not requests to anyone.
    foreign = [u for u in dash.requests if not u.startswith((f"{base}/", f"blob:{base}/"))]
    assert foreign == [], foreign
    assert dash.errors == []


@pytest.fixture
async def dash(browser: Browser, server: LiveServer) -> AsyncIterator[Dash]:
    async with dashboard(browser, server.base_url) as d:
        yield d


async def submit(server: LiveServer | ServerProcess, body: dict[str, Any], **headers: str) -> str:
    async with httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=10) as http:
        resp = await http.post("/api/tasks/submit", json=body)
    assert resp.status_code == 200, resp.text
    task_id: str = resp.json()["task_id"]
    return task_id


async def wait_task(
    server: LiveServer, task_id: str, predicate: Callable[[View], bool], timeout: float = 30
) -> View:
    """Waits on the task's own events (no polling) until ``predicate`` holds for its view."""
    return await wait_on_queue(server.services, task_id, predicate, timeout)


async def wait_status(server: LiveServer, task_id: str, *statuses: str) -> View:
    return await wait_task(server, task_id, lambda v: v["status"] in statuses)


async def api(server: LiveServer, method: str, path: str, **kw: Any) -> httpx.Response:
    async with server.client() as http:
        return await http.request(method, path, **kw)


async def bar_values(bar: Any, until: float, timeout: float = 30) -> list[float]:
    """The values a progress bar shows, read every 50 ms until it shows ``until``."""
    seen: list[float] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = float(await bar.get_attribute("aria-valuenow"))
        if not seen or seen[-1] != value:
            seen.append(value)
        if value >= until:
            return seen
        await asyncio.sleep(0.05)
    raise AssertionError(f"the bar never reached {until}: {seen}")


async def until(predicate: Callable[[], bool], timeout: float = WAIT / 1000) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.02)


async def hold(page: Page, pattern: re.Pattern[str], released: asyncio.Event) -> list[str]:
    """Requests matching ``pattern`` are sent to the server at once, but their answers reach
    the page only once ``released`` is set (later ones pass): a read in flight for as long as
    the test likes, answering what the server said when it was asked. Returns the URLs held."""
    held: list[str] = []

    async def handler(route: Any) -> None:
        if released.is_set():
            await route.continue_()
            return
        held.append(route.request.url)
        response = await route.fetch()
        await released.wait()
        await route.fulfill(response=response)

    await page.route(pattern, handler)
    return held


# -- the list --------------------------------------------------------------------------------


@pytest.mark.slow
async def test_a_new_task_appears_live_and_its_bar_moves_to_100(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    await dash.open()
    page = dash.page
    await expect(page.locator("#conn")).to_have_text("Live", timeout=WAIT)
    await expect(page.get_by_text("No tasks.")).to_be_visible()
    await page.evaluate("window.notReloaded = true")

    title = '<img src=x onerror="window.owned=1"> & "quoted" 标题'
    url = fileserver.url("/slow/1M/live.bin?rate=192K")
    task_id = await submit(server, job([url], title=title))
    row = dash.row(task_id)
    await expect(row).to_be_visible(timeout=WAIT)
    # Titles are text, never markup.
    await expect(row.locator("a.title")).to_have_text(title)
    assert await page.locator("ul.tasks img").count() == 0
    assert await page.evaluate("window.owned") is None

    bar = row.get_by_role("progressbar")
    await expect(bar).not_to_have_attribute("aria-valuenow", "0", timeout=WAIT)
    box = await bar.bounding_box()
    await expect(row.locator(".speed")).to_have_text(re.compile(r"^\d+(\.\d+)? KiB/s$"))
    await expect(row.locator(".eta")).to_have_text(re.compile(r"^\d+:\d\d$"))
    values = await bar_values(bar, 100)
    assert values == sorted(values), values  # never backwards
    assert any(0 < v < 100 for v in values), values  # it moved, not jumped
    assert await bar.bounding_box() == box  # numbers changed, the layout did not
    await expect(row.locator(".badge")).to_have_text("Completed", timeout=WAIT)
    await expect(row.locator(".pct")).to_have_text("100.0 %")
    await expect(row.locator(".size")).to_have_text("1.00 MiB / 1.00 MiB")
    await expect(row.locator(".files")).to_have_text("1/1 files")
    await expect(row.locator(".speed")).to_have_text("—")
    assert await page.evaluate("window.notReloaded") is True
    done = await wait_status(server, task_id, *FINAL)
    assert done["status"] == "completed"
    assert dash.requests.count(f"{server.base_url}/") == 1  # never reloaded
    await dash.shot("list")


async def test_the_list_pages_filters_and_searches(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    ids = [
        await submit(server, job([fileserver.url(f"/size/1K/p{i}.bin")], title=f"job {i:02}"))
        for i in range(1, 13)
    ]
    broken = await submit(server, job([fileserver.url("/status/404/gone.bin")], title="broken"))
    for task_id in [*ids, broken]:
        await wait_status(server, task_id, *FINAL)
    await dash.open()
    page = dash.page
    titles = page.locator("ul.tasks a.title")
    await expect(titles).to_have_count(13, timeout=WAIT)
    await page.get_by_label("Per page").select_option("10")
    newest_first = ["broken", *(f"job {i:02}" for i in range(12, 0, -1))]
    await expect(titles).to_have_text(newest_first[:10])
    await expect(page.locator(".range")).to_have_text(shown(1, 10, 13))
    # Each row's bar is named after its task, not "Progress" ten times.
    bars = page.locator("ul.tasks").get_by_role("progressbar")
    await expect(bars).to_have_count(10)
    names = [await bar.get_attribute("aria-label") for bar in await bars.all()]
    assert names == [f"Progress of {title}" for title in newest_first[:10]], names
    await expect(
        page.get_by_role("progressbar", name="Progress of job 12", exact=True)
    ).to_be_visible()
    await expect(dash.button(NEWER)).to_be_disabled()
    await dash.button(OLDER).click()
    await expect(titles).to_have_text(newest_first[10:])
    await expect(page.locator(".range")).to_have_text(shown(11, 13, 13))
    await expect(dash.button(OLDER)).to_be_disabled()
    await dash.button(NEWER).click()
    await expect(titles).to_have_text(newest_first[:10])

    filters = page.locator(".status-filter")
    await filters.get_by_label("Failed").check()
    await expect(titles).to_have_text(["broken"])
    await expect(dash.row(broken).locator(".badge")).to_have_text("Failed")
    await expect(dash.row(broken).locator(".failed-count")).to_have_text("1 failed")
    await filters.get_by_label("Completed").check()  # several states at once
    await expect(page.locator(".range")).to_have_text(shown(1, 10, 13))
    await filters.get_by_label("Failed").uncheck()
    await expect(page.locator(".range")).to_have_text(shown(1, 10, 12))
    await page.get_by_label("Search titles").fill("job 1")
    await expect(titles).to_have_text(["job 12", "job 11", "job 10"])
    await page.get_by_label("Search titles").fill("nothing like it")
    await expect(page.get_by_text("No tasks.")).to_be_visible()
    await expect(page.locator(".range")).to_have_text(shown(0, 0, 0))


@pytest.mark.parametrize("view", ["list", "detail"])
async def test_events_heard_while_the_first_read_is_on_its_way_are_not_lost(
    dash: Dash, server: LiveServer, fileserver: FileServer, view: str
) -> None:
    """The first answers (the one read at once, the one after tasks_subscribed) were read
    while the task was paused and reach the page only after it completed: the task_completed
    the stream brought meanwhile is drawn on top of them."""
    task_id = await submit(server, job([fileserver.url("/slow/256K/e.bin?rate=128K")], title=view))
    await wait_status(server, task_id, "downloading")
    assert (await api(server, "POST", f"/api/tasks/{task_id}/pause")).status_code == 200
    page = dash.page
    released = asyncio.Event()
    if view == "list":
        pattern, route = re.compile(r"/api/tasks\?"), "#/"
        badge = dash.row(task_id).locator(".badge")
    else:
        pattern, route = re.compile(rf"/api/tasks/{task_id}$"), f"#/task/{task_id}"
        badge = page.locator(".detail-head .badge")
    held = await hold(page, pattern, released)
    await dash.open(route)
    await expect(page.locator("#conn")).to_have_text("Live", timeout=WAIT)
    await until(lambda: len(held) == 2)  # both reads asked (and answered: "paused")
    assert (await api(server, "POST", f"/api/tasks/{task_id}/resume")).status_code == 200
    assert (await wait_status(server, task_id, *FINAL))["status"] == "completed"
    await asyncio.sleep(0.5)  # the stream's events reach the page, which has drawn nothing yet
    released.set()
    await expect(badge).to_have_text("Completed", timeout=5000)
    if view == "list":
        await expect(dash.row(task_id).locator(".pct")).to_have_text("100.0 %")
    else:
        await expect(page.locator(".draft-path")).not_to_have_text("not built yet")


async def test_new_tasks_show_while_other_tasks_keep_changing(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    """Status events of tasks the page does not show lead to one read at most ~300 ms after
    the first of them, however many follow: here a filtered-out task's priority changes every
    100 ms, and a new task still shows as soon as it is completed."""
    hidden = await submit(server, job([fileserver.url("/slow/4M/h.bin?rate=32K")], title="hid"))
    await wait_status(server, hidden, "downloading")
    assert (await api(server, "POST", f"/api/tasks/{hidden}/pause")).status_code == 200
    await dash.open()
    page = dash.page
    await expect(page.locator("#conn")).to_have_text("Live", timeout=WAIT)
    await page.locator(".status-filter").get_by_label("Completed").check()
    await expect(page.get_by_text("No tasks.")).to_be_visible()

    stop = asyncio.Event()

    async def churn() -> int:
        changes = 0
        async with server.client() as http:
            while not stop.is_set():
                changes += 1
                resp = await http.patch(f"/api/tasks/{hidden}", json={"priority": changes})
                assert resp.status_code == 200, resp.text
                await asyncio.sleep(0.1)
        return changes

    churning = asyncio.create_task(churn())
    try:
        await asyncio.sleep(0.5)
        new = await submit(server, job([fileserver.url("/size/8K/n.bin")], title="new"))
        assert (await wait_status(server, new, *FINAL))["status"] == "completed"
        await expect(dash.row(new).locator(".badge")).to_have_text("Completed", timeout=3000)
        assert not churning.done()  # it showed while the changes went on
    finally:
        stop.set()
        changes = await churning
    assert changes >= 5
    await expect(dash.row(hidden)).to_have_count(0)
    assert (await api(server, "POST", f"/api/tasks/{hidden}/cancel")).status_code == 200


# -- the detail ------------------------------------------------------------------------------


async def test_the_detail_shows_files_the_draft_and_its_zip(
    browser: Browser, server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    urls = [fileserver.url(f"/size/{n}K/{name}") for n, name in ((200, "a.bin"), (300, "b.bin"))]
    task_id = await submit(server, job(urls, title="Detail demo"))
    done = await wait_status(server, task_id, *FINAL)
    assert done["status"] == "completed"
    async with dashboard(
        browser, server.base_url, permissions=["clipboard-read", "clipboard-write"]
    ) as dash:
        await dash.open(f"#/task/{task_id}")
        page = dash.page
        await expect(page.locator("h1")).to_have_text("Detail demo", timeout=WAIT)
        await expect(page.locator(".detail-head .badge")).to_have_text("Completed")
        rows = page.locator("tr.file-row")
        await expect(rows).to_have_count(2)
        for i, (url, size) in enumerate(zip(urls, ("200 KiB", "300 KiB"), strict=True)):
            row = rows.nth(i)
            await expect(row.locator(".file-name")).to_have_text(done["files"][i]["file_name"])
            await expect(row.locator(".url")).to_have_text(url)
            await expect(row.locator(".c-size")).to_have_text(f"{size} / {size}")
            await expect(row.locator(".c-status")).to_have_text("Complete")
            await expect(row.locator(".c-attempts")).to_have_text("1")
            bar = row.get_by_role("progressbar")
            await expect(bar).to_have_attribute("aria-valuenow", "100")
            await expect(bar).to_have_attribute(
                "aria-label", f"Progress of {done['files'][i]['file_name']}"
            )
            await expect(row.locator(".replace-box")).to_be_hidden()  # nothing to replace
        await expect(page.locator(".draft-path")).to_have_text(done["draft_path"])
        await expect(dash.button("Download draft (.zip)")).to_be_enabled()
        await dash.button("Copy path").click()
        await expect(page.locator("#toast")).to_have_text("Path copied.")
        assert await page.evaluate("navigator.clipboard.readText()") == done["draft_path"]

        async with page.expect_download() as info:
            await dash.button("Download draft (.zip)").click()
        download = await info.value
        folder = Path(done["draft_path"]).name
        assert download.suggested_filename == f"{folder}.zip"
        saved = tmp_path / "draft.zip"
        await download.save_as(saved)
        with zipfile.ZipFile(saved) as archive:
            names = set(archive.namelist())
        draft = Path(done["draft_path"])
        on_disk = {f"{folder}/{p.relative_to(draft).as_posix()}" for p in draft.rglob("*")}
        assert f"{folder}/draft_content.json" in names
        assert {n for n in on_disk if (draft.parent / n).is_file()} <= names  # all of it
        await dash.shot("detail")


async def test_the_zip_waits_for_a_completed_task_and_an_empty_priority_is_refused_in_place(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    """While a rebuild runs, draft_path still names the old folder: no zip then. The detail
    is told the task is processing (the real step is too short to catch) and hears no event."""
    task_id = await submit(server, job([fileserver.url("/size/16K/z.bin")], title="zip"))
    done = await wait_status(server, task_id, *FINAL)
    assert done["status"] == "completed"
    page = dash.page
    await page.route("**/api/tasks/stream*", lambda route: route.abort())
    detail = re.compile(rf"/api/tasks/{task_id}$")

    async def processing(route: Any) -> None:
        response = await route.fetch()
        await route.fulfill(
            response=response, json={**await response.json(), "status": "processing"}
        )

    await page.route(detail, processing)
    sent: list[str] = []
    page.on("request", lambda r: sent.append(f"{r.method} {r.url}") if r.method != "GET" else None)
    await dash.open(f"#/task/{task_id}")
    await expect(page.locator(".detail-head .badge")).to_have_text("Building draft", timeout=WAIT)
    await expect(page.locator(".draft-path")).to_have_text(done["draft_path"])
    zip_button = dash.button("Download draft (.zip)")
    await expect(zip_button).to_be_disabled()

    # An empty field is no priority 0; 1.5 is none either: said at the field, nothing sent.
    priority = page.get_by_label("Priority")
    problem = page.locator(".inline-form .field-error")
    await expect(priority).to_be_enabled()
    for typed in ("", "1.5"):
        await priority.fill(typed)
        await priority.press("Enter")
        await expect(problem).to_have_text("The priority is a whole number.")
        await expect(priority).to_have_attribute("aria-invalid", "true")
        await expect(priority).to_be_focused()
    await dash.shot("priority-refused")
    await priority.fill("3")  # typing clears it
    await expect(problem).to_have_text("")
    await expect(priority).not_to_have_attribute("aria-invalid", "true")
    assert sent == []

    await page.unroute(detail)
    await page.reload()
    await expect(page.locator(".detail-head .badge")).to_have_text("Completed", timeout=WAIT)
    await expect(zip_button).to_be_enabled()


@pytest.mark.slow
async def test_pause_resume_priority_limit_cancel_retry_regenerate_delete_from_the_buttons(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    task_id = await submit(server, job([fileserver.url("/slow/1M/c.bin?rate=160K")], title="ctl"))
    await dash.open(f"#/task/{task_id}")
    page = dash.page
    status = page.locator(".detail-head .badge")
    pause, resume, cancel = dash.button("Pause"), dash.button("Resume"), dash.button("Cancel task")
    retry, regenerate, delete = (
        dash.button("Retry"),
        dash.button("Rebuild draft"),
        dash.button("Delete"),
    )
    await expect(status).to_have_text("Downloading", timeout=WAIT)
    for enabled in (pause, cancel, delete):
        await expect(enabled).to_be_enabled()
    for disabled in (resume, retry, regenerate):
        await expect(disabled).to_be_disabled()

    await pause.click()
    await expect(status).to_have_text("Paused")
    assert (await wait_status(server, task_id, "paused"))["status"] == "paused"
    await expect(page.locator(".notice")).to_have_text(f"task {task_id} paused")
    await expect(pause).to_be_disabled()
    await expect(resume).to_be_enabled()

    await resume.click()
    await expect(status).to_have_text(re.compile("^(Pending|Downloading)$"))
    await wait_status(server, task_id, "pending", "downloading")
    await expect(resume).to_be_disabled()

    await page.get_by_label("Priority").fill("7")
    await page.get_by_label("Priority").press("Enter")
    await expect(page.locator(".notice")).to_have_text("Priority set to 7.")
    await wait_task(server, task_id, lambda v: v["priority"] == 7)
    limit = page.get_by_label("Speed cap")
    await limit.fill("100K")
    await page.locator("form", has=limit).get_by_role("button", name="Set").click()
    await expect(page.locator(".notice")).to_have_text("Speed cap set to 100K.")
    await wait_task(server, task_id, lambda v: v["max_download_limit"] == "100K")
    await expect(page.locator(".figures-grid")).to_contain_text("100K")
    await limit.fill("")
    await page.locator("form", has=limit).get_by_role("button", name="Set").click()
    await expect(page.locator(".notice")).to_have_text("Speed cap removed.")
    await wait_task(server, task_id, lambda v: v["max_download_limit"] is None)

    await cancel.click()
    await expect(status).to_have_text("Cancelled")
    assert (await wait_status(server, task_id, *FINAL))["status"] == "cancelled"
    for disabled in (pause, resume, cancel, regenerate, page.get_by_label("Priority")):
        await expect(disabled).to_be_disabled()
    await expect(retry).to_be_enabled()

    await retry.click()
    await expect(page.locator(".notice")).to_have_text(
        f"task {task_id} retried: 1 file to download"
    )
    await expect(status).to_have_text("Completed", timeout=WAIT)
    done = await wait_status(server, task_id, *FINAL)
    assert done["status"] == "completed"
    await expect(page.locator(".draft-path")).to_have_text(done["draft_path"])
    await expect(regenerate).to_be_enabled()
    await expect(retry).to_be_disabled()

    await regenerate.click()
    rebuilt = await wait_task(
        server,
        task_id,
        lambda v: v["status"] == "completed" and v["draft_path"] != done["draft_path"],
    )
    await expect(page.locator(".draft-path")).to_have_text(rebuilt["draft_path"], timeout=WAIT)

    await delete.click()
    dialog = page.get_by_role("dialog")
    await expect(dialog).to_contain_text("“ctl” is stopped if it runs")
    await dialog.get_by_label("also its draft folder").check()
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page).to_have_url(f"{server.base_url}/#/")
    await expect(page.locator("#toast")).to_have_text(f"task {task_id} deleted")
    await expect(dash.row(task_id)).to_have_count(0)
    assert (await api(server, "GET", f"/api/tasks/{task_id}")).status_code == 404
    assert not Path(rebuilt["draft_path"]).exists()
    assert Path(done["draft_path"]).exists()  # the first build stays: only the current goes


async def test_a_failed_task_shows_why_and_retries_from_a_replacement_url(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    good, bad = fileserver.url("/size/100K/ok.bin"), fileserver.url("/status/404/gone.bin")
    task_id = await submit(server, job([good, bad], title="needs a new link"))
    failed = await wait_status(server, task_id, *FINAL)
    assert failed["status"] == "failed"
    await dash.open(f"#/task/{task_id}")
    page = dash.page
    failure = page.locator(".failure")
    await expect(failure).to_be_visible(timeout=WAIT)
    await expect(failure.locator("p")).to_have_text(failed["error_message"].split("\n"))
    row = page.locator("tr.file-row").nth(1)
    await expect(row.locator(".c-status")).to_have_text("Error")
    await expect(row.locator(".file-error")).to_have_text(failed["files"][1]["error_message"])
    # A new link only for what a retry downloads again: not a complete file (ok.bin is
    # complete unless the 404 came first and the failure removed its partial bytes).
    first = page.locator("tr.file-row").nth(0).locator(".replace-box")
    if failed["files"][0]["status"] == "complete":
        await expect(first).to_be_hidden()
    else:
        await expect(first).to_be_visible()
    await dash.shot("failure")

    replacement = row.get_by_label("New URL for gone.bin")
    await replacement.fill("ftp://elsewhere.example/gone.bin")  # refused where it was typed
    await dash.button("Retry").click()
    await expect(row.locator(".field-error")).to_have_text("the replacement must be an http(s) URL")
    new = fileserver.url("/size/50K/found.bin")
    await replacement.fill(new)
    await dash.button("Retry").click()
    await expect(page.locator(".detail-head .badge")).to_have_text("Completed", timeout=WAIT)
    done = await wait_status(server, task_id, *FINAL)
    assert done["status"] == "completed"
    assert done["files"][1]["url"] == new and done["files"][1]["status"] == "complete"
    await expect(row.locator(".url")).to_have_text(new)
    await expect(failure).to_be_hidden()


async def test_a_refusal_in_a_race_shows_the_servers_409(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    task_id = await submit(server, job([fileserver.url("/slow/2M/r.bin?rate=128K")]))
    await wait_status(server, task_id, "downloading")
    # The page hears nothing from the stream, so it does not learn of the pause below.
    await dash.page.route("**/api/tasks/stream*", lambda route: route.abort())
    await dash.open(f"#/task/{task_id}")
    page = dash.page
    await expect(page.locator(".detail-head .badge")).to_have_text("Downloading", timeout=WAIT)
    assert (await api(server, "POST", f"/api/tasks/{task_id}/pause")).status_code == 200
    refusal = (await api(server, "POST", f"/api/tasks/{task_id}/pause")).json()["detail"]
    await dash.button("Pause").click()
    # Two live regions that keep their roles: the refusal in the alert, the status emptied.
    await expect(page.locator(".alert")).to_have_text(refusal)
    await expect(page.locator(".alert")).to_have_attribute("role", "alert")
    await expect(page.locator(".notice")).to_have_text("")
    await expect(page.locator(".notice")).to_have_attribute("role", "status")
    await expect(page.locator(".detail-head .badge")).to_have_text("Paused")  # read again
    await expect(dash.button("Pause")).to_be_disabled()
    await expect(dash.button("Resume")).to_be_enabled()
    assert (await api(server, "POST", f"/api/tasks/{task_id}/cancel")).status_code == 200


# -- bulk ------------------------------------------------------------------------------------


async def test_bulk_retry_cancel_and_delete_of_the_selected_tasks(
    dash: Dash, server: LiveServer, fileserver: FileServer
) -> None:
    flaky = [
        await submit(server, job([fileserver.url(f"/flaky/20K/f{i}.bin?fail=1&code=404")]))
        for i in range(2)
    ]
    finished = await submit(server, job([fileserver.url("/size/4K/done.bin")]))
    for task_id in [*flaky, finished]:
        await wait_status(server, task_id, *FINAL)
    running = await submit(server, job([fileserver.url("/slow/4M/run.bin?rate=64K")]))
    await wait_status(server, running, "downloading")
    await dash.open()
    page = dash.page
    await expect(page.locator("ul.tasks li")).to_have_count(4, timeout=WAIT)
    await expect(dash.button("Retry failed (0)")).to_be_disabled()
    await page.get_by_label("Select all on this page").check()
    await expect(page.locator(".sel-count")).to_have_text("4 selected")
    await expect(dash.button("Retry failed (2)")).to_be_enabled()
    await expect(dash.button("Cancel (1)")).to_be_enabled()
    await expect(dash.button("Delete finished (3)")).to_be_enabled()

    await dash.button("Cancel (1)").click()
    await expect(page.locator(".bulk-result")).to_have_text("1 cancelled.")
    assert (await wait_status(server, running, *FINAL))["status"] == "cancelled"
    await expect(dash.row(running).locator(".badge")).to_have_text("Cancelled")
    await expect(page.locator(".sel-count")).to_have_text("3 selected")  # the done one left

    await dash.button("Retry failed (2)").click()
    await expect(page.locator(".bulk-result")).to_have_text("2 retried.")
    for task_id in flaky:
        assert (await wait_status(server, task_id, *FINAL))["status"] == "completed"
        await expect(dash.row(task_id).locator(".badge")).to_have_text("Completed", timeout=WAIT)

    await page.get_by_label("Select all on this page").check()
    await dash.button("Delete finished (4)").click()
    dialog = page.get_by_role("dialog")
    await expect(dialog.locator("h2")).to_have_text("Delete 4 finished tasks?")
    await dialog.get_by_role("button", name="Delete").click()
    await expect(page.locator(".bulk-result")).to_have_text("4 deleted.")
    await expect(page.get_by_text("No tasks.")).to_be_visible(timeout=WAIT)
    listing = (await api(server, "GET", "/api/tasks")).json()
    assert listing["total"] == 0


# -- submit ----------------------------------------------------------------------------------


async def test_a_bad_submission_shows_each_422_at_its_path_then_a_good_one_is_followed(
    dash: Dash, server: LiveServer, fileserver: FileServer, tmp_path: Path
) -> None:
    bad = job(["ftp://files.example/a.mp4"], title="bad", priority="high")
    answer = await api(server, "POST", "/api/tasks/submit", json=bad)
    assert answer.status_code == 422
    expected = [f"{p['path']}: {p['msg']}" for p in answer.json()["detail"]]
    assert any(line.startswith("materials[0].path: ") for line in expected), expected

    await dash.open("#/submit")
    page = dash.page
    box = page.get_by_label("Job (JSON)")
    await box.fill('{\n  "ruleGroup": {,\n}')
    await dash.button("Submit").click()
    await expect(page.locator("li.problem")).to_have_count(1)
    await expect(page.locator("li.problem")).to_contain_text(re.compile(r"^JSON: .*line 2"))
    assert f"{server.base_url}/api/tasks/submit" not in dash.requests  # not sent

    await box.fill(json.dumps(bad, indent=2))
    await dash.button("Submit").click()
    problems = page.locator("li.problem")
    await expect(problems).to_have_text(expected)
    await expect(page.locator('li.problem[data-path="materials[0].path"] .msg')).to_have_text(
        next(p["msg"] for p in answer.json()["detail"] if p["path"] == "materials[0].path")
    )
    await expect(box).to_have_attribute("aria-invalid", "true")
    assert (await api(server, "GET", "/api/tasks")).json()["total"] == 0

    good = tmp_path / "job.json"
    good.write_text(json.dumps(job([fileserver.url("/size/8K/g.bin")], title="from a file")))
    await page.get_by_label("Or pick a file").set_input_files(good)
    await expect(box).to_have_value(good.read_text())
    await dash.button("Submit").click()
    await expect(page).to_have_url(re.compile(r"#/task/[0-9a-f-]{36}$"), timeout=WAIT)
    task_id = page.url.rsplit("/", 1)[1]
    await expect(page.locator("h1")).to_have_text("from a file")
    await expect(page.locator(".detail-head .badge")).to_have_text("Completed", timeout=WAIT)
    assert (await wait_status(server, task_id, *FINAL))["status"] == "completed"


# -- the token -------------------------------------------------------------------------------


async def test_with_a_token_the_page_asks_once_and_then_works(
    browser: Browser, data_dir: Path, fileserver: FileServer, tmp_path: Path
) -> None:
    async with (
        live_server(make_settings(data_dir, api_token=TOKEN)) as server,
        dashboard(browser, server.base_url) as dash,
    ):
        authorized: list[tuple[str, str | None]] = []
        dash.page.on(
            "request",
            lambda r: (
                authorized.append((r.url, r.headers.get("authorization")))
                if "/api/" in r.url
                else None
            ),
        )
        streams: list[str] = []
        dash.page.on(
            "request",
            lambda r: streams.append(r.url) if r.resource_type == "eventsource" else None,
        )
        await dash.open()
        page = dash.page
        dialog = page.get_by_role("dialog")
        await expect(dialog).to_contain_text("This server needs its API token.", timeout=WAIT)
        field = dialog.get_by_label("Token")
        # Hidden as typed, and nothing for a password manager to keep past the session.
        await expect(field).to_have_attribute("type", "password")
        await expect(field).to_have_attribute("autocomplete", "off")
        await field.fill("wrong")

        def probed(resp: Any) -> bool:  # the stream's probe, waiting on the prompt after this
            return (
                resp.url.endswith("/api/settings/limits")
                and resp.status == 401
                and resp.request.headers.get("authorization") == "Bearer wrong"
            )

        async with page.expect_response(probed, timeout=WAIT):
            await dialog.get_by_role("button", name="Use token").click()
        await expect(dialog).to_contain_text("The server refused that token.")
        await dialog.get_by_label("Token").fill(TOKEN)
        opened = len(streams)
        await dialog.get_by_role("button", name="Use token").click()
        await expect(dialog).to_have_count(0)
        await expect(page.get_by_text("No tasks.")).to_be_visible(timeout=WAIT)
        await expect(page.locator("#conn")).to_have_text("Live", timeout=WAIT)
        assert await page.evaluate("sessionStorage.getItem('draftdl.token')") == TOKEN

        bearer = {"Authorization": f"Bearer {TOKEN}"}
        task_id = await submit(
            server, job([fileserver.url("/size/64K/t.bin")], title="tok"), **bearer
        )
        await expect(dash.row(task_id).locator(".badge")).to_have_text("Completed", timeout=WAIT)
        # The new token opened the stream once: the probes that met the 401 and waited on the
        # prompt meanwhile do not open it again.
        assert streams[opened:] == [f"{server.base_url}/api/tasks/stream?token={TOKEN}"], streams

        await page.reload()  # the same tab keeps the token: not asked again
        await expect(dash.row(task_id)).to_be_visible(timeout=WAIT)
        await dash.row(task_id).locator("a.title").click()
        await expect(page.locator(".detail-head .badge")).to_have_text("Completed", timeout=WAIT)
        async with page.expect_download() as info:
            await dash.button("Download draft (.zip)").click()  # fetch + blob: a header
        saved = tmp_path / "tok.zip"
        await (await info.value).save_as(saved)
        with zipfile.ZipFile(saved) as archive:
            assert any(name.endswith("/draft_content.json") for name in archive.namelist())

        await dash.open("#/settings")
        await page.get_by_label("Limit", exact=True).fill("3M")
        await dash.button("Save").click()
        await expect(page.locator(".current-limit")).to_have_text("3M")
        async with server.client(**bearer) as http:
            limits = (await http.get("/api/settings/limits")).json()
        assert limits == {"max_overall_download_limit": "3M"}
        await expect(dialog).to_have_count(0)

    # Before the token: none, then the wrong one. From the first request with it on, every
    # request carries it: in the header, or in the query for the stream (an EventSource
    # cannot send headers).
    right = f"Bearer {TOKEN}"
    first = next(i for i, (url, header) in enumerate(authorized) if header == right)
    assert {header for _, header in authorized[:first]} <= {None, "Bearer wrong"}
    for url, header in authorized[first:]:
        if "/api/tasks/stream" in url:
            assert header is None and url.endswith(f"?token={TOKEN}"), url
        else:
            assert header == right, url


# -- settings, languages, small screens ---------------------------------------------------------


async def test_settings_show_the_limit_and_health_and_set_the_limit(
    dash: Dash, server: LiveServer
) -> None:
    health = (await api(server, "GET", "/api/health")).json()
    await dash.open("#/settings")
    page = dash.page
    await expect(page.locator(".current-limit")).to_have_text("no limit", timeout=WAIT)
    await expect(page.locator(".aria2-version")).to_have_text(health["aria2"]["version"])
    await expect(page.locator(".aria2-restarts")).to_have_text(str(health["aria2"]["restarts"]))
    await expect(page.locator(".drafts-root")).to_have_text(health["drafts"]["root"])
    await expect(page.locator(".drafts-reason")).to_have_text(health["drafts"]["reason"])
    await expect(page.locator(".health-status .badge")).to_have_text("OK")
    # Only the status line is live, and it stays the same element while the figures below
    # are drawn again: nothing else is read out every 5 s.
    status = page.locator(".health-status")
    await expect(status).to_have_attribute("role", "status")
    assert await page.locator(".health").get_attribute("aria-live") is None
    live = "[aria-live], [role=status], [role=alert], [role=log]"
    assert await page.locator(f".health :is({live})").count() == 0
    await status.evaluate("el => { el.dataset.same = 'yes'; }")
    async with page.expect_response(re.compile(r"/api/health$")):
        await dash.button("Refresh").click()
    await expect(page.locator(".aria2-version")).to_have_text(health["aria2"]["version"])
    await expect(status).to_have_attribute("data-same", "yes")

    limit = page.get_by_label("Limit", exact=True)
    await limit.fill("fast")
    await dash.button("Save").click()
    refusal = await api(
        server, "PUT", "/api/settings/limits", json={"max_overall_download_limit": "fast"}
    )
    await expect(page.locator(".settings-view .notice")).to_have_text(
        refusal.json()["detail"][0]["msg"]
    )
    await limit.fill("2M")
    await limit.press("Enter")
    await expect(page.locator(".current-limit")).to_have_text("2M")
    await expect(page.locator(".settings-view .notice")).to_have_text("Saved and applied.")
    got = (await api(server, "GET", "/api/settings/limits")).json()
    assert got == {"max_overall_download_limit": "2M"}
    await dash.shot("settings")


async def test_chinese_or_english_by_the_browser_and_the_switch_sticks(
    browser: Browser, server: LiveServer
) -> None:
    async with dashboard(browser, server.base_url, locale="zh-CN") as dash:
        await dash.open()
        page = dash.page
        await expect(page.locator("h1")).to_have_text("任务", timeout=WAIT)
        await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
        await expect(page.get_by_role("link", name="设置")).to_be_visible()
        await page.get_by_label("语言").select_option("en")
        await expect(page.locator("h1")).to_have_text("Tasks")
        await expect(page.get_by_role("link", name="Settings")).to_be_visible()
        await page.reload()
        await expect(page.locator("h1")).to_have_text("Tasks", timeout=WAIT)
    async with dashboard(browser, server.base_url, locale="en-US") as dash:
        await dash.open("#/settings")
        page = dash.page
        await expect(page.locator("h1")).to_have_text("Settings and health", timeout=WAIT)
        await page.get_by_label("Language").select_option("zh")
        await expect(page.locator("h1")).to_have_text("设置与状态")
        await expect(page.locator("#conn")).to_have_text("实时", timeout=WAIT)
        assert await page.evaluate("localStorage.getItem('draftdl.lang')") == "zh"


@pytest.mark.slow
async def test_the_dashboard_at_375px_and_from_the_keyboard(
    browser: Browser, server: LiveServer, fileserver: FileServer
) -> None:
    """Every view fits a phone's width; every control has a name; a task can be paused
    with Tab and Enter alone; and the screenshot of the dashboard in its states."""
    done = await submit(
        server, job([fileserver.url("/size/512K/a.mp4")], title="Wedding highlights")
    )
    failed = await submit(
        server, job([fileserver.url("/status/404/b.mp4")], title="Product teaser")
    )
    for task_id in (done, failed):
        await wait_status(server, task_id, *FINAL)
    paused = await submit(
        server, job([fileserver.url("/slow/8M/c.mp4?rate=256K")], title="Vlog day 3")
    )
    await wait_task(server, paused, lambda v: v["progress"]["downloaded_size"] > 1_500_000)
    assert (await api(server, "POST", f"/api/tasks/{paused}/pause")).status_code == 200
    running = await submit(
        server,
        job(
            [fileserver.url(f"/slow/6M/{n}.mp4?rate=200K") for n in ("d1", "d2")],
            title="Travel montage",
        ),
    )
    await wait_task(server, running, lambda v: v["progress"]["downloaded_size"] > 600_000)

    async with dashboard(browser, server.base_url) as dash:
        await dash.open()
        page = dash.page
        await expect(page.locator("ul.tasks li")).to_have_count(4, timeout=WAIT)
        await expect(dash.row(running).locator(".speed")).not_to_have_text("—", timeout=WAIT)
        await dash.shot("dashboard", docs=True)

    async with dashboard(browser, server.base_url, viewport={"width": 375, "height": 760}) as dash:
        page = dash.page
        for route in ("#/", f"#/task/{failed}", "#/submit", "#/settings"):
            await dash.open(route)
            await expect(page.locator("main h1")).not_to_have_text("", timeout=WAIT)
            overflow = await page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (route, overflow)
            unnamed = await page.evaluate(
                """[...document.querySelectorAll('input, select, textarea, button')]
                .filter(el => !el.closest('[hidden]'))
                .filter(el => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
                              && !(el.tagName === 'BUTTON' && el.textContent.trim()))
                .map(el => el.outerHTML)"""
            )
            assert unnamed == [], (route, unnamed)
        await dash.open()
        await expect(page.locator("ul.tasks li")).to_have_count(4, timeout=WAIT)
        await dash.shot("list-375")

        # Keyboard only: Tab to the running task's link, Enter, Tab to Pause, Enter.
        link = dash.row(running).locator("a.title")
        for _ in range(80):
            await page.keyboard.press("Tab")
            if await link.evaluate("el => el === document.activeElement"):
                break
        else:
            raise AssertionError("the task's link is not reachable with Tab")
        outline = await link.evaluate("el => getComputedStyle(el).outlineStyle")
        assert outline == "solid"  # a visible focus
        await page.keyboard.press("Enter")
        await expect(page.locator(".detail-head .badge")).to_have_text("Downloading", timeout=WAIT)
        pause = dash.button("Pause")
        for _ in range(40):
            await page.keyboard.press("Tab")
            if await pause.evaluate("el => el === document.activeElement"):
                break
        else:
            raise AssertionError("the Pause button is not reachable with Tab")
        await page.keyboard.press("Enter")
        await expect(page.locator(".detail-head .badge")).to_have_text("Paused")
        assert (await wait_status(server, running, "paused"))["status"] == "paused"
        # Its files turn "paused" a monitor tick later, with no event: the page reads again.
        statuses = page.locator("tr.file-row .c-status .badge")
        await expect(statuses).to_have_text(["Paused", "Paused"], timeout=WAIT)
        await dash.shot("detail-375")
    for task_id in (paused, running):
        assert (await api(server, "POST", f"/api/tasks/{task_id}/cancel")).status_code == 200


# -- restarts, other hosts, the docs -----------------------------------------------------------


@pytest.mark.slow
async def test_the_list_survives_a_server_restart(
    browser: Browser, data_dir: Path, fileserver: FileServer
) -> None:
    """A real ``draftdl serve`` is stopped and started again. The page hears nothing while it
    is down, nor afterwards while its stream is held off (aborted) and, on the restarted
    server, one task is deleted and another runs to its end: the list shows both once it is
    live again, which only its read after tasks_subscribed can tell it. Then it goes on live."""
    proc = ServerProcess(data_dir)
    try:
        await proc.start()
        before = await submit(proc, job([fileserver.url("/size/16K/a.bin")], title="before"))
        doomed = await submit(proc, job([fileserver.url("/size/16K/d.bin")], title="doomed"))
        async with dashboard(browser, proc.base_url) as dash:
            await dash.open()
            page = dash.page
            conn = page.locator("#conn")
            for task_id in (before, doomed):
                badge = dash.row(task_id).locator(".badge")
                await expect(badge).to_have_text("Completed", timeout=WAIT)
            await expect(conn).to_have_text("Live")
            stream = "**/api/tasks/stream*"
            await page.route(stream, lambda route: route.abort())  # the next connections
            proc.stop()
            await expect(conn).to_have_text("Reconnecting…", timeout=WAIT)
            await proc.start()
            async with proc.client() as http:
                assert (await http.delete(f"/api/tasks/{doomed}")).status_code == 200
                resp = await http.post(
                    "/api/tasks/submit",
                    params={"wait": 30},
                    json=job([fileserver.url("/size/16K/w.bin")], title="while away"),
                )
                assert resp.status_code == 200 and resp.json()["status"] == "completed", resp.text
                away = resp.json()["task_id"]
            await expect(conn).to_have_text("Reconnecting…")
            await expect(dash.row(doomed)).to_be_visible()  # it heard nothing
            await expect(dash.row(away)).to_have_count(0)
            await page.unroute(stream)
            await expect(conn).to_have_text("Live", timeout=WAIT)
            await expect(dash.row(doomed)).to_have_count(0, timeout=5000)
            await expect(dash.row(away).locator(".badge")).to_have_text("Completed")
            await expect(dash.row(before)).to_be_visible()

            after = await submit(
                proc, job([fileserver.url("/slow/256K/b.bin?rate=128K")], title="after")
            )
            row = dash.row(after)
            await expect(row).to_be_visible(timeout=WAIT)  # live, without a reload
            await expect(row.locator(".badge")).to_have_text("Completed", timeout=WAIT)
            await expect(row.get_by_role("progressbar")).to_have_attribute("aria-valuenow", "100")
            assert dash.requests.count(f"{proc.base_url}/") == 1
    finally:
        proc.stop()


async def test_the_docs_render_without_any_other_host(browser: Browser, server: LiveServer) -> None:
    async with dashboard(browser, server.base_url) as dash:
        page = dash.page
        await page.goto(f"{server.base_url}/docs")
        await expect(page.locator(".swagger-ui .info .title")).to_contain_text(
            "draftdl", timeout=WAIT
        )
        await expect(page.locator(".opblock").first).to_be_visible()
        await page.goto(f"{server.base_url}/redoc")
        await expect(page.locator("h1").first).to_contain_text("draftdl", timeout=WAIT)
        await expect(page.get_by_text("Submit a draft job").first).to_be_attached()
        assets = [u for u in dash.requests if "/docs-assets/" in u]
        assert any(u.endswith("swagger-ui-bundle.js") for u in assets), dash.requests
        assert any(u.endswith("redoc.standalone.js") for u in assets), dash.requests
