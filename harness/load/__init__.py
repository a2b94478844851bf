"""Load generation: Locust as a subprocess (master + workers), per-request samples as JSON lines.

Entry points: `execute.measure_load` (one run -> LoadReport), `runner.run_load` (one run -> its
samples), `capacity.search`, and `cli.register` (the `load` and `capacity` commands).

Importing this package starts nothing and imports neither Locust nor gevent: the harness process
must not be monkey-patched. The Locust side: `scenarios/locustfile.py`, `worker.py`, `client.py`.
"""
