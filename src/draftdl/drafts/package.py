"""A draft as a zip, for a JianYing on another machine.

Inside the zip no path points at this server. By default media paths take JianYing's own
relative form, ``##_draftpath_placeholder_<draft id>_##/assets/<file>``, which JianYing
expands to wherever the folder is unpacked (reported to open on JianYing 10.8 for macOS; not
verified elsewhere). With ``root`` (the client's draft folder) they become absolute paths
under it instead, which any version reads, provided the folder is unpacked exactly there.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

TIMELINES = ("draft_content.json", "draft_info.json")
META = "draft_meta_info.json"


def _rewrite(node: Any, old: str, new: str) -> Any:
    if isinstance(node, str):
        return new + node[len(old) :] if node.startswith(old) else node
    if isinstance(node, list):
        return [_rewrite(v, old, new) for v in node]
    if isinstance(node, dict):
        return {k: _rewrite(v, old, new) for k, v in node.items()}
    return node


def pack_draft(folder: Path, out: Path, root: str | None = None) -> None:
    """Writes ``folder`` (with its assets) as ``out``, paths rewritten for the client."""
    meta: dict[str, Any] = json.loads((folder / META).read_text(encoding="utf-8"))
    name = folder.name
    if root:
        sep = "\\" if "\\" in root and "/" not in root else "/"
        base = root.rstrip("/\\")
        target = f"{base}{sep}{name}{sep}"
        meta.update(draft_root_path=base, draft_fold_path=f"{base}{sep}{name}")
    else:
        sep = "/"
        target = f"##_draftpath_placeholder_{meta['draft_id']}_##/"
        meta.update(draft_root_path="", draft_fold_path="")
    # A Windows server writes its paths with "\\", a POSIX one with "/": both are the server's.
    prefixes = {str(folder) + os.sep, folder.as_posix() + "/"}

    def fix(data: Any) -> Any:
        fixed = data
        for prefix in prefixes:
            fixed = _rewrite(fixed, prefix, target)
        if sep == "\\":  # assets/x → assets\\x after the root, as Windows writes them
            fixed = _rewrite(fixed, target + "assets/", target + "assets\\")
        return fixed

    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(folder.rglob("*")):
            if not path.is_file():
                continue
            arcname = f"{name}/{path.relative_to(folder).as_posix()}"
            if path.name in TIMELINES and path.parent == folder:
                content = fix(json.loads(path.read_text(encoding="utf-8")))
                archive.writestr(arcname, json.dumps(content, ensure_ascii=False, indent=4))
            elif path.name == META and path.parent == folder:
                archive.writestr(arcname, json.dumps(fix(meta), ensure_ascii=False, indent=4))
            else:  # media are compressed already
                archive.write(path, arcname, compress_type=zipfile.ZIP_STORED)
