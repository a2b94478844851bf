"""Requests of a workload, generated from a seed: the same spec sends the same prompts in order.

Each worker draws from its own stream (seed, worker index). Repeated prompts (the cache mix) come
from one pool shared by all workers, so a repeat can hit a cache another worker filled; so do the
shared prefixes (the same seed gives every worker the same system prompts).

Opt-in workloads: prompts from a conversations file (`dataset`), multi-turn `sessions` (a user's
conversation grows by each answer), `shared_prefix` groups, and requests sized by a trace entry.
With `one_token_words` (words the serving model's tokenizer makes exactly one token of), a prompt
of N words is N tokens.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from typing import Literal

from harness.load.dataset import Conversation
from harness.load.trace import TraceEntry
from harness.spec.load import Tenant, Workload

# Plain words: no role markers ("system:") or phrases a prompt-injection filter would flag.
# A word list is easier to read as text than as 240 list items.
VOCAB = (  # noqa: SIM905
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
    turn: int | None = None  # 1-based turn of a multi-turn session
    prefix_group: int | None = None  # which shared prefix the prompt starts with
    planned_tokens: int | None = None  # prompt tokens meant (trace entry, tokenizer-sized)
    keep_text: bool = False  # the answer is needed (the next turn appends it)
    dataset_id: str | None = None  # the dataset entry's own id


@dataclass
class Session:
    """One user's conversation: the messages so far and the turns still to send."""

    id: str
    messages: list[dict[str, str]]
    turns: tuple[str, ...]  # the user messages to send, in order
    prefix_group: int | None
    sent: int = 0
    answers: list[str] = field(default_factory=list)
    dataset_id: str | None = None

    @property
    def over(self) -> bool:
        return self.sent >= len(self.turns)

    def answered(self, text: str) -> None:
        self.messages.append({"role": "assistant", "content": text})


def make_prompt(rng: random.Random, words: int, vocab: list[str] | None = None) -> str:
    return f"{INSTRUCTION} {' '.join(rng.choices(vocab or VOCAB, k=words))}"


class WorkloadGenerator:
    def __init__(
        self,
        workload: Workload,
        model: str,
        default_api_key: str,
        seed: int,
        worker: int,
        *,
        workers: int = 1,
        conversations: list[Conversation] | None = None,
        one_token_words: list[str] | None = None,
        instruction_tokens: int | None = None,
        token_lengths: dict[int, int] | None = None,
        block_tokens: int = 512,
        template_tokens: tuple[int, int] | None = None,
    ) -> None:
        self.w = workload
        self.model = model
        self.worker = worker
        self.workers = workers
        self._convs = conversations or []
        self._vocab = one_token_words or None
        self._instruction_n = instruction_tokens or len(INSTRUCTION.split())
        self._template = template_tokens
        self._token_lengths = token_lengths or {}
        self._seed = seed
        self._blocks: dict[int, list[str]] = {}
        self._block_tokens = block_tokens
        self._conv_next = worker  # sequential order: worker k takes k, k + N, ...
        self._session_n = 0
        sp = workload.shared_prefix
        self._shared = (
            [
                " ".join(
                    random.Random(f"{seed}:shared-prefix:{g}").choices(
                        self._vocab or VOCAB, k=sp.words
                    )
                )
                for g in range(sp.groups)
            ]
            if sp is not None
            else []
        )
        self._rng = random.Random(f"{seed}:{worker}:workload")
        hot_rng = random.Random(f"{seed}:repeated")
        self._hot = [
            make_prompt(hot_rng, workload.prompt_words) for _ in range(workload.repeated_pool)
        ]
        # One prefix for every fresh prompt of the run (a shared system prompt: what a server's
        # prefix cache reuses); it comes from the seed, so a fresh seed means a fresh prefix.
        words = round(workload.prompt_words * workload.prefix_share)
        prefix_rng = random.Random(f"{seed}:prefix")
        self._prefix = " ".join(prefix_rng.choices(VOCAB, k=words)) if words else ""
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
        return f"{INSTRUCTION} {self._prefix} {' '.join(self._rng.choices(VOCAB, k=rest))}"

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
        content = [{"role": "user", "content": prompt}] if kind == "chat" else prompt
        path, data = self._encode(kind, content, self.w.max_tokens)
        return RequestPlan(
            seq=seq,
            kind=kind,
            path=path,
            body=data,
            api_key=tenant.api_key,
            tenant=tenant.name,
            prompt_id=prompt_id,
            repeated=repeated,
            stream=self.w.stream,
            prompt=prompt,
        )

    def _encode(
        self, kind: str, content: list[dict[str, str]] | str, max_tokens: int
    ) -> tuple[str, bytes]:
        """The path and JSON body of a chat (messages) or completion (prompt) request."""
        body: dict[str, object] = {"model": self.model, "max_tokens": max_tokens}
        if kind == "chat":
            body["messages"] = content
            path = "/v1/chat/completions"
        else:
            body["prompt"] = content
            path = "/v1/completions"
        if self.w.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if self.w.temperature is not None:
            body["temperature"] = self.w.temperature
        if self.w.ignore_eos:
            body["ignore_eos"] = True
        return path, json.dumps(body).encode()

    # --- opt-in workloads ----------------------------------------------------------------------
    def _conversation(self) -> Conversation:
        d = self.w.dataset
        if d is not None and d.order == "sequential":
            conv = self._convs[self._conv_next % len(self._convs)]
            self._conv_next += self.workers
            return conv
        return self._convs[self._rng.randrange(len(self._convs))]

    def _prefix_group(self) -> int | None:
        sp = self.w.shared_prefix
        if sp is None or not (sp.share >= 1 or self._rng.random() < sp.share):
            return None
        return self._rng.randrange(sp.groups)

    def _system(self, group: int | None, own: str | None) -> str | None:
        parts = [self._shared[group]] if group is not None else []
        if own:
            parts.append(own)
        return "\n\n".join(parts) or None

    def _tenant(self) -> Tenant:
        if len(self._tenants) == 1:
            return self._tenants[0]
        return self._rng.choices(self._tenants, self._weights)[0]

    def _plan(
        self,
        prompt_id: str,
        messages: list[dict[str, str]],
        *,
        max_tokens: int | None = None,
        kind: Literal["chat", "completion"] = "chat",
        turn: int | None = None,
        prefix_group: int | None = None,
        planned_tokens: int | None = None,
        keep_text: bool = False,
        dataset_id: str | None = None,
    ) -> RequestPlan:
        """A request of the opt-in workloads (the default one keeps its own path in `next`)."""
        seq = self._seq
        self._seq += 1
        tenant = self._tenant()
        content = messages if kind == "chat" else "\n\n".join(m["content"] for m in messages)
        path, data = self._encode(kind, content, max_tokens or self.w.max_tokens)
        return RequestPlan(
            seq=seq,
            kind=kind,
            path=path,
            body=data,
            api_key=tenant.api_key,
            tenant=tenant.name,
            prompt_id=prompt_id,
            repeated=False,
            stream=self.w.stream,
            prompt=messages[-1]["content"],
            turn=turn,
            prefix_group=prefix_group,
            planned_tokens=planned_tokens,
            keep_text=keep_text,
            dataset_id=dataset_id,
        )

    def _kind(self) -> Literal["chat", "completion"]:
        share = self.w.completion_share
        return "completion" if share > 0 and self._rng.random() < share else "chat"

    def next_request(self) -> RequestPlan:
        """One single-turn request: a dataset conversation's first turn, or a generated prompt,
        either behind a shared prefix when `shared_prefix` says so."""
        if not self._convs and self.w.shared_prefix is None and self._vocab is None:
            return self.next()  # the default workload, exactly as before
        group = self._prefix_group()
        planned: int | None = None
        dataset_id: str | None = None
        if self._convs:
            conv = self._conversation()
            own, prompt, prompt_id = conv.system, conv.first, f"conv-{conv.index}"
            dataset_id = conv.id
            n_first = self._token_lengths.get(conv.index)
            if n_first is not None and conv.system is None:
                planned = self._sized(group, n_first)
            d = self.w.dataset
            answer_len = conv.answer_words if d is not None and d.answer_len_as_max_tokens else None
        else:
            own, answer_len = None, None
            n = self._prompt_words()
            prompt = make_prompt(self._rng, n, self._vocab)
            prompt_id = f"w{self.worker}-{self._seq}"
            planned = self._sized(group, self._instruction_n + n)
        messages = []
        if (system := self._system(group, own)) is not None:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        if group is not None:
            prompt_id = f"prefix-{group}/{prompt_id}"
        return self._plan(
            prompt_id,
            messages,
            max_tokens=answer_len,
            kind=self._kind(),
            prefix_group=group,
            planned_tokens=planned,
            dataset_id=dataset_id,
        )

    def new_session(self) -> Session:
        """A conversation for one user: a dataset conversation's user turns, or generated ones."""
        assert self.w.sessions is not None
        n = self.w.sessions.turns
        group = self._prefix_group()
        self._session_n += 1
        sid = f"s{self.worker}-{self._session_n}"
        dataset_id: str | None = None
        if self._convs:
            conv = self._conversation()
            turns, own, dataset_id = conv.turns[:n], conv.system, conv.id
            sid = f"{sid}/conv-{conv.index}"
        else:
            first = make_prompt(self._rng, self._prompt_words(), self._vocab)
            words = self.w.sessions.turn_words
            rest = [
                f"Tell me more about {' '.join(self._rng.choices(self._vocab or VOCAB, k=words))}"
                for _ in range(n - 1)
            ]
            turns, own = (first, *rest), None
        messages = []
        if (system := self._system(group, own)) is not None:
            messages.append({"role": "system", "content": system})
        return Session(
            id=sid, messages=messages, turns=tuple(turns), prefix_group=group, dataset_id=dataset_id
        )

    def next_turn(self, session: Session) -> RequestPlan:
        """The session's next turn: the conversation so far plus the next user message. The
        caller appends the answer (`session.answered`) before asking for the turn after."""
        session.messages.append({"role": "user", "content": session.turns[session.sent]})
        session.sent += 1
        return self._plan(
            session.id,
            list(session.messages),
            turn=session.sent,
            prefix_group=session.prefix_group,
            keep_text=not session.over,
            dataset_id=session.dataset_id,
        )

    def _sized(self, group: int | None, content: int) -> int | None:
        """Prompt tokens the server will count for a user message of `content` tokens behind
        shared prefix `group`: the chat template's and the prefix's tokens added. None without
        the tokenizer (word counts are not token counts)."""
        if self._vocab is None:
            return None
        system = group is not None
        around = (self._template[1] if system else self._template[0]) if self._template else 0
        return content + around + (len(self._shared[group].split()) if group is not None else 0)

    def _block(self, hash_id: int) -> list[str]:
        """The words of one trace block: the same id gives the same words in every worker."""
        if hash_id not in self._blocks:
            rng = random.Random(f"{self._seed}:block:{hash_id}")
            self._blocks[hash_id] = rng.choices(self._vocab or VOCAB, k=self._block_tokens)
        return self._blocks[hash_id]

    def for_trace(self, entry: TraceEntry) -> RequestPlan:
        """A request the size of a trace entry: a prompt of its input length (tokens with
        `one_token_words`, else words) asking for its output length."""
        group = self._prefix_group()
        around = self._sized(group, self._instruction_n) or self._instruction_n
        words = max(1, entry.input_tokens - around)
        if entry.hash_ids:
            blocks = [w for h in entry.hash_ids for w in self._block(h)]
            blocks += self._rng.choices(self._vocab or VOCAB, k=max(0, words - len(blocks)))
            prompt = f"{INSTRUCTION} {' '.join(blocks[:words])}"
        else:
            prompt = make_prompt(self._rng, words, self._vocab)
        messages = []
        if (system := self._system(group, None)) is not None:
            messages.append({"role": "system", "content": system})
        messages.append({"role": "user", "content": prompt})
        return self._plan(
            f"trace-{self._seq}",
            messages,
            max_tokens=entry.output_tokens,
            kind=self._kind(),
            prefix_group=group,
            planned_tokens=self._sized(group, self._instruction_n + words),
        )
