"""The file server: a private nginx on 127.0.0.1 serving the workloads' files from tmpfs.

Its own config and process, so the bench never touches the system nginx: one worker,
sendfile, keep-alive, logs and pid in the temp dir, ``user root;``
only when run as root.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx

from bench.common import MIB, NGINX, REPO, BenchError, log_tail, stop_process

PHOTO = REPO / "tests" / "data" / "media" / "photo.jpg"

NGINX_CONF = """\
{user}daemon off;
master_process on;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;

events {{
    worker_connections 1024;
}}

http {{
    default_type application/octet-stream;
    access_log {tmp}/nginx-access.log;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 65;
    keepalive_requests 100000;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;

    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
        }}
    }}
}}
"""


def write_padded_photo(path: Path, size: int, photo: bytes) -> None:
    """The draft builder probes media, so picture workloads need real images; readers stop at
    the JPEG end marker, so zero padding gives files of any size that still parse as the
    320x240 picture."""
    if len(photo) > size:
        raise BenchError(f"{PHOTO} is larger than {size} bytes")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(photo + bytes(size - len(photo)))


def write_random_file(path: Path, size: int) -> None:
    """Random bytes so nothing along the path can compress or dedupe the payload."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left:
            n = min(left, 4 * MIB)
            f.write(os.urandom(n))
            left -= n


@contextmanager
def nginx_server(tmp: Path, root: Path, port: int) -> Iterator[str]:
    """nginx as a child in its own session, stopped on the way out; yields its base URL."""
    conf = tmp / "nginx.conf"
    user = "user root;\n" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    root.mkdir(parents=True, exist_ok=True)
    (root / "ready.txt").write_text("ok\n")
    log = (tmp / "nginx-stdout.log").open("wb")
    cmd = [NGINX, "-c", str(conf), "-p", f"{tmp}/", "-e", str(tmp / "nginx-error.log")]
    proc = subprocess.Popen(
        cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise BenchError(f"nginx exited: {log_tail(tmp / 'nginx-error.log')}")
            with suppress(httpx.HTTPError):
                if httpx.get(f"{base}/ready.txt", timeout=1).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise BenchError("nginx did not answer within 10 s")
            time.sleep(0.05)
        yield base
    finally:
        stop_process(proc, signal.SIGTERM, 5)
        log.close()
