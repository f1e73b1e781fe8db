"""What a job carries that the draft does not use: listed as the task's ``warnings``.

At the top level and inside ``materials[]``, keys we do not know are a client's own metadata:
kept verbatim in the stored job, never refused, and named here so a client can see that the
draft did not use them. (Inside the parts the builder reads, an unknown key is a 422.)
"""

from __future__ import annotations

from typing import Any

from draftdl.drafts.spec import iter_materials

TOP_KEYS = frozenset(
    {
        "ruleGroup",
        "materials",
        "testData",
        "draft_config",
        "priority",
        "max_download_limit",
        "download_options",
        "deadline",
        "webhook",
        "segment_styles",
        "raw_segments",
        "raw_materials",
        "extra_materials",
        "use_raw_segments",
        "canvas_width",
        "canvas_height",
        "fps",
    }
)
MATERIAL_KEYS = frozenset(
    {"id", "type", "path", "media_path", "material_url", "name", "text", "download_options"}
)
# Item keys the original server's clients send that the builder accepts and does not use.
ITEM_HINTS = {"ext": "a file's extension comes from its URL or its material's type"}
MAX_WARNINGS = 50


def _name(key: object) -> str:
    text = str(key)
    return text if len(text) <= 60 else text[:57] + "..."


def unused_keys(body: dict[str, Any]) -> list[str]:
    found = [
        f"{_name(k)}: not used by the draft (kept in the job)" for k in body if k not in TOP_KEYS
    ]
    for loc, material, _ in iter_materials(body.get("materials", [])):
        if isinstance(material, dict):
            where = "materials" + "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc[1:]
            )
            found += [
                f"{where}.{_name(k)}: not used by the draft (kept in the job)"
                for k in material
                if k not in MATERIAL_KEYS
            ]
    test_data = body.get("testData")
    items = test_data.get("items") if isinstance(test_data, dict) else None
    for i, item in enumerate(items if isinstance(items, list) else []):
        data = item.get("data") if isinstance(item, dict) else None
        for key, why in ITEM_HINTS.items():
            if isinstance(data, dict) and key in data:
                found.append(f"testData.items[{i}].data.{key}: not used ({why})")
    if len(found) > MAX_WARNINGS:
        found = [*found[: MAX_WARNINGS - 1], f"... and {len(found) - MAX_WARNINGS + 1} more"]
    return found
