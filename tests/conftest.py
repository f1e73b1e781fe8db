from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from fileserver import FileServer
from servers import Service, make_settings, running_service


@pytest.fixture
def fileserver() -> Iterator[FileServer]:
    with FileServer() as server:
        yield server


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
async def service(data_dir: Path) -> AsyncIterator[Service]:
    async with running_service(make_settings(data_dir)) as svc:
        yield svc
