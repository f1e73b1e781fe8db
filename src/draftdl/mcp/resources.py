"""The resources: the job format (prose and the JobRequest JSON schema) and example jobs.

The schema is the one the OpenAPI document publishes (``components.schemas.JobRequest`` and
what it refers to, from the same models), made self-contained under ``$defs``. The examples
are the valid jobs of ``shared/examples``, packaged in ``examples/`` as they are there.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.resources import TextResource

from draftdl.api.schemas import COMPONENT, extra_components

JOB_FORMAT = "draftdl://job-format"
EXAMPLES = "draftdl://examples/"
PREFIX = COMPONENT.format(model="")  # "#/components/schemas/"

EXAMPLE_NOTES = {
    "seed-minimal.json": "no files to download: an empty 1920x1080, 30 fps draft",
    "basic-draft.json": "3 downloads (a clip, a tone, a picture) and a caption on four tracks "
    "of a 1080x1920, 30 fps draft",
    "plugin-style.json": "materials given by category and the canvas at the top level: a "
    "720x1280, 25 fps draft with a video and an audio track",
}

PROSE = """\
# draftdl job format

A job is the JSON object that `submit_job` takes (the body of `POST /api/tasks/submit`).
draftdl downloads every http(s) URL in it through aria2c, then builds a JianYing draft
folder from the files.

- `ruleGroup`: `{id, title, rules: [{type, title, material_ids}]}`. The title names the
  draft; a rule's `type` joins the items of `testData` to the rule's materials.
- `materials`: a list of `{id, type, path, name}` (`type`: video, photo, audio, text, ...;
  `path`, `media_path` or `material_url`: an http(s) URL to download, or a local file in the
  server's `local_media_roots`), or lists by category (`videos`, `audios`, `images`,
  `texts`).
- `testData`: `tracks` (`{id, type, title, relative_index, absolute_index}`) and `items`
  (`{type: <a rule's type>, data: {track, start, duration, source_start, source_duration,
  speed, volume, scale, x, y, text}}`): each item puts its rule's materials on its track,
  one after another from `start` (seconds), each for `duration` (default: the media's own
  length; pictures and texts 3 s).
- `draft_config`: `{canvas_config: {canvas_width, canvas_height}, fps}` (also flat
  `canvas_width`/`canvas_height`, or at the top level of the job).
- Optional: `priority` (higher runs first), `max_download_limit` (bytes/s or `2M`, `500K`),
  `deadline` (seconds after submission, then the task fails), `download_options`
  (`{headers, proxy, max_download_limit}`, for the whole job or inside one material).

The job is checked before anything is stored: a bad field is refused with its JSON path and
the reason (`materials[0].path: ...`), and nothing is downloaded. What only the files can
tell (a segment longer than its media, an unreadable file) fails the task later, with an
`error_message` naming the material, the file and the reason.

A task goes `pending → downloading → processing → completed`, or ends `failed` or
`cancelled`; `paused` while held. Call `get_task` with `wait_seconds` (at most 60) until it
ends: `completed` gives `draft_path`, the draft folder; `failed` gives `error_message`
(each URL and why). Expired links: `retry_task` with `urls` {old: new}.

Examples (`{{BASE_URL}}` stands for the address that serves the media: put real URLs
there):

"""


def job_schema() -> dict[str, Any]:
    """JobRequest with every component it refers to, the references made local."""
    components = extra_components()
    needed: dict[str, Any] = {}
    pending = ["JobRequest"]
    while pending:
        name = pending.pop()
        if name in needed:
            continue
        needed[name] = components[name]
        pending.extend(_refs(components[name]))
    root = _localised(needed.pop("JobRequest"))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        **root,
        "$defs": {name: _localised(schema) for name, schema in sorted(needed.items())},
    }


def _refs(node: object) -> list[str]:
    if isinstance(node, dict):
        found = []
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(PREFIX):
                found.append(value.removeprefix(PREFIX))
            else:
                found += _refs(value)
        return found
    if isinstance(node, list):
        return [name for item in node for name in _refs(item)]
    return []


def _localised(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            key: (
                "#/$defs/" + value.removeprefix(PREFIX)
                if key == "$ref" and isinstance(value, str) and value.startswith(PREFIX)
                else _localised(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_localised(item) for item in node]
    return node


def example_files() -> dict[str, str]:
    """File name → text of each packaged example, in the order of ``EXAMPLE_NOTES``."""
    folder = resources.files("draftdl.mcp") / "examples"
    return {name: (folder / name).read_text(encoding="utf-8") for name in EXAMPLE_NOTES}


def job_format() -> str:
    listed = "".join(f"- `{EXAMPLES}{name}`: {note}\n" for name, note in EXAMPLE_NOTES.items())
    schema = json.dumps(job_schema(), indent=1, ensure_ascii=False)
    return f"{PROSE}{listed}\n## JSON schema (JobRequest)\n\n```json\n{schema}\n```\n"


def register_resources(server: MCPServer[Any]) -> None:
    server.add_resource(
        TextResource(
            uri=JOB_FORMAT,
            name="job-format",
            title="The draftdl job format",
            description="What a job holds, how a task goes, and the JobRequest JSON schema",
            mime_type="text/markdown",
            text=job_format(),
        )
    )
    for name, text in example_files().items():
        server.add_resource(
            TextResource(
                uri=EXAMPLES + name,
                name=name,
                title=f"Example job: {name}",
                description=f"{EXAMPLE_NOTES[name]}; {{{{BASE_URL}}}} stands for the media's "
                "address",
                mime_type="application/json",
                text=text,
            )
        )
