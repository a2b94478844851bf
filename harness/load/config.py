"""What the harness hands each Locust process: the spec plus the resolved target, as one JSON file.

The file's path travels in the HARNESS_LOAD_CONFIG environment variable (Locust forks its workers
after importing the locustfile, so every worker reads the same file once).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.spec.load import LoadSpec, OpenLoop
from harness.wire import Wire

CONFIG_ENV = "HARNESS_LOAD_CONFIG"


class WorkerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    spec: LoadSpec
    target_url: str
    api_key: str
    model: str
    sample_dir: str
    run_tag: str
    # The run's seed (the spec's, or the fresh one drawn for this run).
    seed: int
    # Seconds the shape keeps users alive at most; the harness normally stops Locust earlier,
    # as soon as every worker has written its done file.
    hard_stop_s: float
    # From the serving model's tokenizer (workload.tokenizer): words that are one token each,
    # the instruction's tokens, and each dataset conversation's first-turn tokens by line.
    one_token_words: list[str] | None = None
    instruction_tokens: int | None = None
    token_lengths: dict[int, int] | None = None
    # The chat template's tokens around one user message / a system and a user message.
    template_tokens: tuple[int, int] | None = None
    # The model's context as its server reported it (None: not asked, or it did not say);
    # workload.context_overflow applies to the requests over it.
    context_tokens: int | None = None
    # The workers run elsewhere (`--external-workers`): they send their samples to the master
    # over Locust's messages, and the master writes them under sample_dir.
    forward_to_master: bool = False
    # Where that master listens for them ("127.0.0.1:5557").
    master_bind: str | None = None
    # The gateway's names on the wire (the key's header, served-by, cache, request id).
    wire: Wire = Wire()

    @property
    def open_loop(self) -> bool:
        return isinstance(self.spec.load, OpenLoop)

    @property
    def user_class(self) -> Literal["LLMUser", "OpenLoopUser"]:
        return "OpenLoopUser" if self.open_loop else "LLMUser"

    def write(self, path: Path) -> None:
        path.write_text(self.model_dump_json(indent=2))


def load_worker_config(env: dict[str, str] | None = None) -> WorkerConfig:
    env = dict(os.environ) if env is None else env
    path = env.get(CONFIG_ENV)
    if not path:
        raise RuntimeError(
            f"{CONFIG_ENV} is not set: this locustfile is run by `harness load`, which writes the "
            "worker config (target, workload, schedule) and points this variable at it"
        )
    return WorkerConfig.model_validate_json(Path(path).read_text())
