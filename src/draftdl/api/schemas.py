"""The models of what the API takes and answers, so that OpenAPI describes it.

Answers are built as dicts by ``TaskState.view()`` and validated against these models once,
by the route's ``response_model``; every model allows extra keys, so a key added later reaches
clients without a change here. Statuses are the enums of ``tasks/states.py``: the schema lists
whatever values they hold.

The job (``JobRequest``) is documented here but not parsed with it: the submit route reads the
raw body itself (size limit, 422s with JSON paths), see ``api/tasks.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel
from pydantic.json_schema import models_json_schema

from draftdl.events.bus import FINAL_EVENTS, PROGRESS, STATUS_CHANGED
from draftdl.model.states import FileStatus, TaskStatus
from draftdl.tasks.options import MAX_HEADERS
from draftdl.tasks.validation import MAX_DEADLINE

Timestamp = Annotated[
    str, Field(json_schema_extra={"format": "date-time"}, description="ISO 8601, UTC")
]


class Open(BaseModel):
    """A model that keeps (and documents room for) keys it does not declare."""

    model_config = ConfigDict(extra="allow")


# -- tasks -------------------------------------------------------------------------------


class ProgressInfo(Open):
    """A task's progress; ``progress_percent`` never goes backwards."""

    total_files: int
    completed_files: int
    failed_files: int
    active_files: int
    total_size: int = Field(description="bytes, 0 while sizes are unknown")
    downloaded_size: int = Field(description="bytes")
    progress_percent: float = Field(ge=0, le=100)
    download_speed: int = Field(description="bytes per second")
    eta_seconds: float | None = Field(description="null while unknown")


class FileInfo(Open):
    """One file of a task: the URL it comes from and where it lands."""

    url: str
    file_path: str
    file_name: str
    gid: str = Field(description="aria2's id of the download")
    status: FileStatus
    total_length: int = Field(description="bytes, 0 while unknown")
    completed_length: int
    download_speed: int = Field(description="bytes per second")
    attempts: int = Field(description="times it was tried (a retry is one more)")
    next_retry_at: Timestamp | None = Field(description="when a transient failure is tried again")
    error_code: int | None = Field(description="aria2's exit code when the file failed")
    error_message: str | None = Field(description="the last error (also while a retry waits)")
    source_url: str | None = Field(description="the job's own URL, when a retry replaced url")


class TaskSummary(Open):
    """A task as listed: everything but its files."""

    task_id: str
    title: str = Field(description='the rule group title, "" when it has none (searched by q)')
    warnings: list[str] = Field(
        description="keys of the job the draft does not use (client metadata, kept in the job)"
    )
    status: TaskStatus
    priority: int
    max_download_limit: str | None = Field(description="the task's own speed cap")
    message: str | None
    progress: ProgressInfo
    draft_path: str | None = Field(description="the draft folder, once built")
    error_message: str | None
    created_at: Timestamp
    updated_at: Timestamp
    completed_at: Timestamp | None


class TaskView(TaskSummary):
    """A task with its files."""

    files: list[FileInfo]


class TaskAnswer(RootModel[TaskView | TaskSummary]):
    """A task read by id: with its files, or without them when asked (``files=false``)."""


class TaskList(Open):
    tasks: list[TaskSummary] = Field(description="newest first, without their files")
    total: int = Field(description="how many tasks match, over all pages")
    limit: int
    offset: int


class SubmitResponse(Open):
    task_id: str
    status: TaskStatus
    message: str
    total_files: int = Field(description="distinct URLs to download")
    warnings: list[str] = Field(description="what the draft does not use (kept in the job)")
    task: TaskView | None = Field(None, description="with ?wait=: the task as the wait ended")


class CancelResponse(Open):
    success: bool
    message: str
    status: TaskStatus


class ControlResponse(Open):
    success: bool
    task_id: str
    status: TaskStatus
    message: str


class RetryResponse(ControlResponse):
    retried_files: int = Field(description="files downloaded again (those not complete)")


class DeleteResponse(Open):
    success: bool
    task_id: str
    message: str


class Strict(BaseModel):
    """A request body: a key it does not know is a 422, never ignored."""

    model_config = ConfigDict(extra="forbid")


Speed = Annotated[
    str | int,
    Field(description="bytes per second, or aria2 style with K or M ('2M'); 0: none"),
]


class RetryRequest(Strict):
    urls: dict[str, str] = Field(
        default_factory=dict,
        description="replacement links: the task's URL → a new http(s) URL (expired links)",
    )


class TaskChange(Strict):
    priority: int | None = Field(None, ge=-(2**31), lt=2**31, description="higher runs first")
    max_download_limit: Speed | None = Field(
        None, description="the task's total speed cap; null removes it"
    )


class Limits(Strict):
    max_overall_download_limit: Speed


# -- health ------------------------------------------------------------------------------


class Aria2Health(Open):
    running: bool
    state: str
    managed: bool = Field(description="false when aria2_rpc_url names an aria2c run by others")
    version: str | None
    pid: int | None
    rpc_url: str | None
    binary: str | None
    binary_source: str | None
    restarts: int
    reason: str | None = Field(description="why aria2c is not running")


class DatabaseHealth(Open):
    ok: bool
    error: str | None


class DiskHealth(Open):
    path: str = Field(description="the data folder")
    free_bytes: int | None = Field(description="null when it could not be read")
    min_free_bytes: int = Field(description="the min_free_space setting, in bytes")
    ok: bool


class DraftsHealth(Open):
    root: str = Field(description="where draft folders are written")
    reason: str = Field(description="why that folder")


class TasksHealth(Open):
    live: int
    active: int
    max_active: int


class MonitorHealth(Open):
    ticks: int
    rpc_requests: int
    tracked_files: int


class Health(Open):
    """``ok`` only when aria2c runs, the database answers and the disk has room; the same
    body comes with 503 otherwise, so a container health check needs only the status code."""

    status: Literal["ok", "degraded"]
    problems: list[str] = Field(description="one line per problem; empty when ok")
    version: str
    aria2: Aria2Health
    database: DatabaseHealth
    disk: DiskHealth
    drafts: DraftsHealth
    tasks: TasksHealth
    monitor: MonitorHealth
    role: Literal["all", "api", "worker"] = Field(
        "all", description="all: one process; api, worker: a node of a cluster"
    )
    node: str | None = Field(None, description="the node's name in a cluster")


# -- errors ------------------------------------------------------------------------------


class ErrorItem(Open):
    """One rejected field: ours carry ``path``, FastAPI's own (query parameters) ``input``."""

    loc: list[str | int] = Field(description='where: ["body", "materials", 0, "path"]')
    msg: str
    type: str
    path: str | None = Field(
        None, description="the JSON path as people write it: materials[0].path"
    )


class ErrorBody(Open):
    """Every error answer: a message, or for 413 and 422 the list of rejected fields; and
    always the same as one line of text."""

    detail: str | list[ErrorItem]
    message: str = Field(
        description="one line saying what is wrong (for 422: the first fields and why)"
    )


ERRORS: dict[int, str] = {
    401: "Missing or wrong API token",
    403: "Refused: a change asked from another site's page, or a request from draftdl's own "
    "aria2c (a job's URL that leads here)",
    404: "No task with this id",
    409: "Not possible in the task's current state",
    413: "The body is larger than max_request_bytes",
    415: "The body is not declared as JSON (Content-Type: application/json)",
    422: "Rejected fields, each with its JSON path and the reason",
    503: "The database or aria2c is unavailable; try again shortly",
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` entries of a route's error answers."""
    return {code: {"model": ErrorBody, "description": ERRORS[code]} for code in codes}


# -- the job (documented, read by tasks/validation.py) -------------------------------------

Id = str | int


class JobRule(Open):
    type: str = Field(min_length=1, description="joins testData.items[].type to this rule")
    title: str | None = None
    material_ids: list[Id] = Field(default_factory=list)
    meta: dict[str, Any] | None = None


class JobRuleGroup(Open):
    id: Id | None = None
    title: str | None = Field(None, description="names the draft")
    rules: list[JobRule] = Field(default_factory=list)


class DownloadOptions(BaseModel):
    """How aria2 fetches files: a material's options override the job's, which override the
    download_rules setting. Cookie, Authorization and Proxy-Authorization values and proxy
    credentials are stored but never shown back."""

    model_config = ConfigDict(extra="forbid")

    headers: dict[str, str | None] | None = Field(
        None,
        max_length=MAX_HEADERS,
        description="header name (an RFC 7230 token) → value (no CR, LF or NUL); null drops "
        "a header that a lower layer sets",
    )
    proxy: str | None = Field(
        None,
        description="http://[user:password@]host[:port], or null for none; refused when the "
        "server sets url_deny_networks (its egress guard is the proxy then)",
    )
    max_download_limit: str | int | None = Field(
        None, description="a cap for each file, bytes per second or aria2 style like '500K'"
    )


class JobMaterial(Open):
    """A material; ``path``, ``media_path`` or ``material_url`` is an http(s) URL (downloaded)
    or a local file under local_media_roots."""

    id: Id
    type: str | None = Field(None, description="video, photo, audio, music, text, ...")
    path: str | None = None
    media_path: str | None = None
    material_url: str | None = None
    name: str | None = None
    download_options: DownloadOptions | None = None


class JobMaterialsByCategory(Open):
    videos: list[JobMaterial] = Field(default_factory=list)
    audios: list[JobMaterial] = Field(default_factory=list)
    images: list[JobMaterial] = Field(default_factory=list)
    texts: list[JobMaterial] = Field(default_factory=list)


class JobTrack(Open):
    id: str
    type: str = Field(description="video, audio, text, ...")
    title: str | None = None
    relative_index: int | None = Field(None, description="orders tracks of one type")
    absolute_index: int | None = Field(None, description="the layer; else list order")


Seconds = float | None
MAX_SECONDS = 1e7


class JobItemData(Open):
    track: str | None = Field(None, description="a testData.tracks[].id")
    start: Seconds = Field(None, ge=0, le=MAX_SECONDS, description="seconds on the track")
    duration: Seconds = Field(
        None, gt=0, le=MAX_SECONDS, description="seconds; default: the media's own length"
    )
    source_start: Seconds = Field(None, ge=0, le=MAX_SECONDS)
    source_duration: Seconds = Field(None, gt=0, le=MAX_SECONDS)
    path: str | None = Field(None, description="overrides the material's path")
    text: str | None = None
    volume: float | None = Field(None, ge=0)
    speed: float | None = Field(None, ge=0.1, le=100)
    scale: float | None = Field(None, gt=0)
    x: float | None = None
    y: float | None = None


class JobItem(Open):
    type: str = Field(
        min_length=1, description="a ruleGroup.rules[].type: takes that rule's materials"
    )
    data: JobItemData = Field(default_factory=JobItemData)


class JobTestData(Open):
    tracks: list[JobTrack] = Field(default_factory=list)
    items: list[JobItem] = Field(default_factory=list)


Pixels = int | None


class JobCanvas(Open):
    canvas_width: Pixels = Field(None, ge=1, le=16384)
    canvas_height: Pixels = Field(None, ge=1, le=16384)
    width: Pixels = Field(None, ge=1, le=16384)
    height: Pixels = Field(None, ge=1, le=16384)


class JobDraftConfig(Open):
    canvas_config: JobCanvas | None = None
    canvas_width: Pixels = Field(None, ge=1, le=16384)
    canvas_height: Pixels = Field(None, ge=1, le=16384)
    fps: float | None = Field(None, ge=1, le=240)
    config: dict[str, Any] | None = Field(None, description="merged into the draft's config")


class JobWebhook(BaseModel):
    """Where this task's status events are POSTed, signed (README: Webhooks)."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(description="http(s); not this service's own ports")
    events: list[TaskStatus] = Field(
        default_factory=lambda: [TaskStatus.COMPLETED, TaskStatus.FAILED, TaskStatus.CANCELLED],
        min_length=1,
        description="the statuses to tell of",
    )


class JobRequest(Open):
    """A draft job as JianYing automation clients send it (DESIGN §3)."""

    ruleGroup: JobRuleGroup  # the wire names
    materials: list[JobMaterial] | JobMaterialsByCategory = Field(
        default_factory=list, description="a list, or lists by category"
    )
    testData: JobTestData | None = None
    draft_config: JobDraftConfig = Field(default_factory=JobDraftConfig)
    priority: int = Field(0, ge=-(2**31), lt=2**31, description="higher runs first")
    max_download_limit: str | int | None = Field(
        None, description="bytes per second, or aria2 style like '2M' or '500K'"
    )
    download_options: DownloadOptions | None = Field(
        None, description="for every file of the job; a material's own override them"
    )
    segment_styles: Any = Field(None, description="kept verbatim; URLs inside are downloaded")
    raw_segments: Any = Field(None, description="kept verbatim; URLs inside are downloaded")
    raw_materials: Any = Field(None, description="kept verbatim; URLs inside are downloaded")
    canvas_width: Pixels = Field(None, ge=1, le=16384, description="when draft_config has none")
    canvas_height: Pixels = Field(None, ge=1, le=16384)
    fps: float | None = Field(None, ge=1, le=240)
    deadline: float | None = Field(
        None,
        gt=0,
        le=MAX_DEADLINE,
        description="seconds after submission (at most 30 days); then the task fails",
    )
    webhook: JobWebhook | None = None


COMPONENT = "#/components/schemas/{model}"
JOB_SCHEMA = {"$ref": COMPONENT.format(model="JobRequest")}


# -- events --------------------------------------------------------------------------------


class TaskEvent(Open):
    """The JSON of every event (SSE ``data``, Socket.IO payload): the task's id, then what
    the event is about."""

    task_id: str
    task: TaskView | None = Field(None, description="task_subscribed: the snapshot")
    status: TaskStatus | None = None
    progress: ProgressInfo | None = None


EVENT_NAMES = ("task_subscribed", PROGRESS, STATUS_CHANGED, *sorted(FINAL_EVENTS))


def _event_stream(description: str, names: tuple[str, ...]) -> dict[str, Any]:
    return {
        "description": description,
        "content": {
            "text/event-stream": {
                "schema": {  # one event (OpenAPI 3.1: the schema describes each event)
                    "type": "object",
                    "required": ["event", "data"],
                    "properties": {
                        "event": {"type": "string", "examples": list(names)},
                        "data": {
                            "type": "string",
                            "contentMediaType": "application/json",
                            "contentSchema": {"$ref": COMPONENT.format(model="TaskEvent")},
                        },
                        "id": {"type": "string"},
                        "retry": {"type": "integer"},
                    },
                }
            }
        },
    }


EVENT_STREAM: dict[int | str, dict[str, Any]] = {
    200: _event_stream(
        "Named events: task_subscribed (the snapshot) first, then the task's events as "
        "Socket.IO sends them; a heartbeat comment every 15 s; closed after the final event",
        EVENT_NAMES,
    ),
    **errors(404, 422, 503),
}
ALL_EVENTS_STREAM: dict[int | str, dict[str, Any]] = {
    200: _event_stream(
        "Named events: tasks_subscribed first (then read GET /api/tasks), then every "
        "task's events as Socket.IO sends them; a heartbeat comment every 15 s; never closed "
        "by the server",
        ("tasks_subscribed", *EVENT_NAMES[1:]),
    ),
    **errors(503),
}


def extra_components() -> dict[str, dict[str, Any]]:
    """Models that no route parameter or response model names (the job, read raw; the events,
    inside a stream), as OpenAPI components."""
    _, top = models_json_schema(
        [(JobRequest, "validation"), (TaskEvent, "serialization")], ref_template=COMPONENT
    )
    defs: dict[str, dict[str, Any]] = top["$defs"]
    return defs


# -- webhooks ------------------------------------------------------------------------------


class WebhookAttemptView(BaseModel):
    n: int = Field(description="1 for the first attempt")
    at: str
    status_code: int | None = Field(description="the receiver's answer; null: none came")
    error: str | None
    duration_ms: int


class WebhookDeliveryView(BaseModel):
    id: str = Field(description="the webhook-id header, the same on every attempt")
    url: str = Field(description="where it goes, without credentials or query")
    event: TaskStatus
    state: Literal["pending", "delivered", "stopped", "failed"]
    attempts: int
    created_at: str
    next_attempt_at: str | None
    delivered_at: str | None
    last_status: int | None
    last_error: str | None
    tries: list[WebhookAttemptView]


class WebhookDeliveries(BaseModel):
    task_id: str
    deliveries: list[WebhookDeliveryView]
