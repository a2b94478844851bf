"""Requests of a workload, generated from a seed: the same spec sends the same prompts in order.

Each worker draws from its own stream (seed, worker index). Repeated prompts (the cache mix) come
from one pool shared by all workers, so a repeat can hit a cache another worker filled.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Literal

from harness.spec.load import Tenant, Workload

# Plain words: no role markers ("system:") or phrases a prompt-injection filter would flag.
# A word list is easier to read as text than as 240 list items.
_VOCAB = (  # noqa: SIM905
    "about above across after again against almost along already also always among amount "
    "animal answer apple area around article autumn average balance basket beach become "
    "before begin behind below better between beyond bicycle bird black blue board boat body "
    "bottle bridge bright brother build butter button cabin camera candle canvas carbon "
    "career carpet castle cause center chair change chapter cheese chicken circle city class "
    "clean clock cloud coast coffee color common copper corner cotton country course cover "
    "crowd culture current danger daughter debate decide deep desert detail differ dinner "
    "direct doctor dollar double dragon dream driver early earth effect eight energy engine "
    "enough escape evening example factor family farmer feather field figure finger finish "
    "flower follow forest forward friend garden gather gentle glass golden govern grain "
    "grass green ground guitar habit harbor health heavy height hollow honey horse hunter "
    "island jacket journey jungle kettle kitchen ladder language large leader letter level "
    "light linen little local lunch machine market matter meadow measure method middle "
    "minute mirror moment morning mountain music narrow nature needle number object ocean "
    "office orange orchard paper parent pencil people pepper picture planet pocket poem "
    "purple question quiet rabbit railway reason record region river rocket salad sample "
    "season second silver simple sister society soft spring square station stone storm story "
    "street summer sunset system table teacher temple thunder ticket timber tomato travel "
    "valley velvet village violet voyage wagon water weather window winter wonder yellow"
).split()

INSTRUCTION = "Write a short reply about these words:"


@dataclass(frozen=True)
class RequestPlan:
    seq: int
    kind: Literal["chat", "completion"]
    path: str
    body: bytes
    api_key: str
    tenant: str
    prompt_id: str
    repeated: bool
    stream: bool = True
    prompt: str = ""


def make_prompt(rng: random.Random, words: int) -> str:
    return f"{INSTRUCTION} {' '.join(rng.choices(_VOCAB, k=words))}"


class WorkloadGenerator:
    def __init__(
        self, workload: Workload, model: str, default_api_key: str, seed: int, worker: int
    ) -> None:
        self.w = workload
        self.model = model
        self.worker = worker
        self._rng = random.Random(f"{seed}:{worker}:workload")
        hot_rng = random.Random(f"{seed}:repeated")
        self._hot = [
            make_prompt(hot_rng, workload.prompt_words) for _ in range(workload.repeated_pool)
        ]
        # One prefix for every fresh prompt of the run (a shared system prompt: what a server's
        # prefix cache reuses); it comes from the seed, so a fresh seed means a fresh prefix.
        words = round(workload.prompt_words * workload.prefix_share)
        prefix_rng = random.Random(f"{seed}:prefix")
        self._prefix = " ".join(prefix_rng.choices(_VOCAB, k=words)) if words else ""
        self._tenants = list(workload.tenants) or [
            Tenant(name="default", api_key=default_api_key or "none")
        ]
        self._weights = [t.weight for t in self._tenants]
        self._seq = 0

    def _prompt_words(self) -> int:
        j = self.w.prompt_words_jitter
        lo = max(1, round(self.w.prompt_words * (1 - j)))
        hi = max(lo, round(self.w.prompt_words * (1 + j)))
        return self._rng.randint(lo, hi)

    def _fresh_prompt(self) -> str:
        n = self._prompt_words()
        if not self._prefix:
            return make_prompt(self._rng, n)
        rest = max(1, n - len(self._prefix.split()))
        return f"{INSTRUCTION} {self._prefix} {' '.join(self._rng.choices(_VOCAB, k=rest))}"

    def next(self) -> RequestPlan:
        seq = self._seq
        self._seq += 1
        rng = self._rng
        repeated = self.w.repeated_share > 0 and rng.random() < self.w.repeated_share
        if repeated:
            idx = rng.randrange(len(self._hot))
            prompt, prompt_id = self._hot[idx], f"hot-{idx}"
        else:
            prompt, prompt_id = self._fresh_prompt(), f"w{self.worker}-{seq}"
        kind: Literal["chat", "completion"] = (
            "completion"
            if self.w.completion_share > 0 and rng.random() < self.w.completion_share
            else "chat"
        )
        tenant = (
            self._tenants[0]
            if len(self._tenants) == 1
            else rng.choices(self._tenants, self._weights)[0]
        )
        body: dict[str, object] = {"model": self.model, "max_tokens": self.w.max_tokens}
        if kind == "chat":
            body["messages"] = [{"role": "user", "content": prompt}]
            path = "/v1/chat/completions"
        else:
            body["prompt"] = prompt
            path = "/v1/completions"
        if self.w.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.w.temperature is not None:
            body["temperature"] = self.w.temperature
        if self.w.ignore_eos:
            body["ignore_eos"] = True
        return RequestPlan(
            seq=seq,
            kind=kind,
            path=path,
            body=json.dumps(body).encode(),
            api_key=tenant.api_key,
            tenant=tenant.name,
            prompt_id=prompt_id,
            repeated=repeated,
            stream=self.w.stream,
            prompt=prompt,
        )
