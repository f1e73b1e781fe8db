"""draftdl's benchmark: every figure of issue 13 measured beside bare aria2c on loopback.

Run it with ``.venv/bin/python bench/run.py`` (or ``python -m bench`` from the repository);
bench/README.md describes each module, workload and option. The modules:

- ``runner``: options, the plan (which workloads, how many series), the series loop, clean-up.
- ``downloads``: W1-W5K, interleaved bare aria2c / draftdl pairs on the same files.
- ``api_load``: API latency during W2 with 10 concurrent submits; submit throughput.
- ``listing``: 10,000 stored tasks: the listing's latency and the server's memory.
- ``latency``: LAT, how fast a task's end is pushed to Socket.IO and SSE clients.
- ``targets`` and ``report``: the issue's targets, met or not; tables and JSON.
- ``profiling``: py-spy on the server during a chosen workload, and its hot spots.
- ``service``, ``bare``, ``nginx``, ``verify``, ``stats``, ``common``: the parts they share.
"""
