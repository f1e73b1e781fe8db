"""``python -m bench`` from the repository: the same as ``bench/run.py``."""

import sys

from bench.runner import main

sys.exit(main())
