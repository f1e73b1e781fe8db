"""pyJianYingDraft's errors in English: the library words most of them in Chinese.

A failed task's message is read by people who may not read Chinese; the library's own text
follows as detail, so nothing it said is lost.
"""

from __future__ import annotations

import re

# (pattern in the library's message, what it means), first match wins.
KNOWN: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), meaning)
    for pattern, meaning in (
        (r"没有视频轨道或图片轨道", "the file has no video or picture track"),
        (r"没有音频轨道", "the file has no audio track"),
        (r"音频素材不应包含视频轨道", "an audio material must not contain a video track"),
        (r"不支持的视频素材类型", "this video or picture file type is not supported"),
        (r"不支持的音频素材类型", "this audio file type is not supported"),
        (r"^找不到", "the file is missing"),
        (r"超出了素材时长", "the requested range is longer than the media"),
        (r"overlaps with existing segment", "it overlaps another segment on its track"),
        (r"is not of the same type as the track", "its kind does not fit the track"),
        (r"颜色必须使用", "a colour must be written as '#RRGGBBAA'"),
        (r"不存在名为 '.*' 的轨道", "no track has that name"),
        (r"已存在", "something of that name exists already"),
    )
)


def explain(exc: BaseException) -> str:
    """'the file has no audio track (library: 给定的素材文件 ... 没有音频轨道)'."""
    said = str(exc) or type(exc).__name__
    for pattern, meaning in KNOWN:
        if pattern.search(said):
            return f"{meaning} (library: {said})"
    if re.search(r"[\u3400-\u9fff]", said):
        return f"the drafting library refused it (library: {said})"
    return said
