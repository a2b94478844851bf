"""Benchmark baseline: Locust's own FastHttpUser posting the same request, no instrumentation.

Run by benchmarks/bench_llm_user.py with BENCH_PATH and BENCH_BODY in the environment.
"""

from __future__ import annotations

import os

from locust import FastHttpUser, constant, task

PATH = os.environ.get("BENCH_PATH", "/v1/chat/completions")
BODY = os.environ.get("BENCH_BODY", "{}")
HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


class PlainFastHttpUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def post(self) -> None:
        self.client.post(PATH, data=BODY, headers=HEADERS)
