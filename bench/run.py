#!/usr/bin/env python3
"""Benchmark draftdl against bare aria2c, both downloading from a private local nginx.

The entry point: ``.venv/bin/python bench/run.py --workload W4`` (options: ``--help``, and
bench/README.md). The work is in the ``bench`` package beside this file.
"""

import sys
from pathlib import Path

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    # Run as a script, this folder is sys.path[0]: put the repository there instead, so the
    # package imports as ``bench`` and its modules cannot shadow others by name.
    sys.path[:] = [str(here.parent), *(p for p in sys.path if Path(p or ".").resolve() != here)]
    from bench.runner import main

    sys.exit(main())
