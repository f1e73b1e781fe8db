"""File names derived from URLs: safe, unique, and never outside the task's folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from draftdl.tasks.planner import inside, plan_files, safe_name
from draftdl.tasks.validation import UrlRef


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        ("http://h/media/clip.mp4", "video", "clip.mp4"),
        ("http://h/media/clip.mp4?sig=abc&exp=1", "video", "clip.mp4"),
        ("http://h/media/..%2F..%2F..%2Fetc%2Fpasswd", "video", "passwd.mp4"),
        ("http://h/a/%E4%BD%A0%E5%A5%BD.MP3", "audio", "你好.mp3"),
        ("http://h/x/..", "photo", "file.jpg"),
        ("http://h/", None, "file.bin"),
        ("http://h/dir/..%5C..%5Cwin.ini", None, "win.ini"),
        ("http://h/a/con.mp4", "video", "_con.mp4"),
        ("http://h/a/bad%00name%0A.png", "photo", "badname.png"),
        ("http://h/a/q%3F%22%3C%3E%7C%2A.jpg", "photo", "q______.jpg"),
        ("http://h/a/.hidden", "video", "hidden.mp4"),
        ("http://h/a/trailing.%20", "video", "trailing.mp4"),
        ("http://h/a/noext", "music", "noext.mp3"),
        ("http://h/a/x.sh%2F..%2F..", "video", "file.mp4"),
    ],
)
def test_safe_name(url: str, kind: str | None, expected: str) -> None:
    assert safe_name(url, kind) == expected


def test_long_names_are_cut_keeping_the_extension() -> None:
    name = safe_name("http://h/" + "é" * 300 + ".mp4", "video")
    assert name.endswith(".mp4") and len(name.encode()) <= 120


def test_plan_dedupes_urls_and_numbers_collisions() -> None:
    refs = [
        UrlRef("http://a/clip.mp4", ("materials", 0, "path"), "video"),
        UrlRef("http://b/clip.mp4", ("materials", 1, "path"), "video"),
        UrlRef("http://a/clip.mp4", ("materials", 2, "path"), "video"),
        UrlRef("http://c/CLIP.mp4", ("materials", 3, "path"), "video"),
        UrlRef("http://d/clip.mp4.aria2", ("materials", 4, "path"), "video"),
    ]
    names = [p.file_name for p in plan_files(refs)]
    assert names == ["clip.mp4", "clip-1.mp4", "CLIP-2.mp4", "clip.mp4.aria2.mp4"]


def test_inside_refuses_escapes(tmp_path: Path) -> None:
    assert inside(tmp_path, "ok.bin") == tmp_path.resolve() / "ok.bin"
    for bad in ("../x", "a/b", "/etc/passwd", ".."):
        with pytest.raises(ValueError):
            inside(tmp_path, bad)


@pytest.mark.timeout(3)  # the quadratic namer took 5.8 s for this here
def test_ten_thousand_equal_names_are_numbered_in_one_pass() -> None:
    refs = [
        UrlRef(f"http://h/{i}/clip.mp4", ("materials", i, "path"), "video") for i in range(10_000)
    ]
    names = [p.file_name for p in plan_files(refs)]
    assert names == ["clip.mp4", *(f"clip-{i}.mp4" for i in range(1, 10_000))]
    assert len({n.lower() for n in names}) == 10_000


def test_a_literal_suffixed_name_is_not_taken_twice() -> None:
    urls = ["http://a/clip.mp4", "http://b/clip-1.mp4", "http://c/clip.mp4", "http://d/clip.mp4"]
    refs = [UrlRef(u, ("materials", i, "path"), "video") for i, u in enumerate(urls)]
    assert [p.file_name for p in plan_files(refs)] == [
        "clip.mp4",
        "clip-1.mp4",
        "clip-2.mp4",
        "clip-3.mp4",
    ]
