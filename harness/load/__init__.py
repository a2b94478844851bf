"""Load generation: Locust as a subprocess (master + workers), per-request samples as JSON lines.

Entry points: `execute.measure_load` (one run -> LoadReport), `runner.run_load` (one run -> its
samples), `merge.merge_runs` (run folders written apart -> one LoadReport), `capacity.search`,
and `cli.register` (the `load` command with its `merge` subcommand, and `capacity`).

Importing this package starts nothing and imports neither Locust nor gevent: the harness process
must not be monkey-patched. The Locust side: `scenarios/locustfile.py`, `worker.py`, `client.py`,
`forward.py` (samples of workers on other machines sent to the master).
"""
