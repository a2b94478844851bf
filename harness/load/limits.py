"""Requests that cannot fit the model's context, counted before a dataset or trace run.

A request fits when its prompt tokens plus its max_tokens are at most the context its model
server reports (vLLM refuses one over it; llama.cpp refuses a prompt over it and cuts an answer
short). `workload.context_overflow` says what the run does with the others: `report` (count them
and send them as they are), `skip` (not sent) or `clip` (the prompt shortened to the context
minus max_tokens; one whose max_tokens alone fills the context cannot be, and is not sent).

Prompt tokens: a trace entry's recorded input length (the harness sizes its prompt to it); a
dataset conversation's first user turn as the server's /tokenize counted it plus the chat
template's tokens (workload.tokenizer), else estimated from its characters (about 4 a token, the
chat template not counted). A system message is estimated from its characters either way, and a
shared prefix is not counted. Multi-turn sessions are counted by their first turn: later turns
grow by the answers, which are not known before the run. A clipped prompt is cut at a word
boundary in proportion to its characters, so its size is an estimate too.

The parent counts; every Locust worker applies the same choice to the same requests.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from harness.load.dataset import Conversation
from harness.load.trace import TraceEntry
from harness.spec.load import Workload

Policy = Literal["report", "skip", "clip"]
CHARS_PER_TOKEN = 4
TRACE_COUNTED = "the trace's recorded lengths"
T = TypeVar("T")


def estimate_tokens(text: str) -> int:
    return -(-len(text) // CHARS_PER_TOKEN)


class ContextCheck(BaseModel):
    """The count the run's output and report show."""

    model_config = ConfigDict(extra="ignore")

    context_tokens: int | None  # None: the model server did not say
    source: str  # where the context was read, or what was asked
    policy: Policy
    unit: Literal["requests", "conversations"]
    total: int
    over: int = 0
    clipped: int = 0
    skipped: int = 0
    counted: str = ""  # how the prompt tokens were counted

    def line(self) -> str:
        field = f"workload.context_overflow: {self.policy}"
        if self.context_tokens is None:
            return f"context: {self.source}; the {self.total} {self.unit} are not checked ({field})"
        head = f"the model's context of {self.context_tokens} tokens (prompt + max_tokens; "
        head += f"{self.counted}; from {self.source})"
        if not self.over:
            return f"context: all {self.total} {self.unit} fit {head}"
        doing = {
            "report": "sent as they are",
            "skip": "not sent",
            "clip": f"prompts clipped to fit ({self.clipped})"
            + (f", {self.skipped} not sent: max_tokens alone fills it" if self.skipped else ""),
        }[self.policy]
        return f"context: {self.over} of {self.total} {self.unit} exceed {head}: {doing} ({field})"


@dataclass
class Fitted(Generic[T]):
    items: list[T]  # what the run sends: the ones over the context skipped or clipped
    over: int = 0
    clipped: int = 0
    skipped: int = 0
    changed: set[int] = dataclasses.field(default_factory=set)  # positions of clipped items


def fit_trace(entries: list[TraceEntry], context: int | None, policy: Policy) -> Fitted[TraceEntry]:
    out = Fitted[TraceEntry]([])
    for e in entries:
        if context is None or e.input_tokens + e.output_tokens <= context:
            out.items.append(e)
            continue
        out.over += 1
        budget = context - e.output_tokens
        if policy == "report":
            out.items.append(e)
        elif policy == "clip" and budget >= 1:
            out.clipped += 1
            out.changed.add(len(out.items))
            out.items.append(dataclasses.replace(e, input_tokens=budget))
        else:
            out.skipped += 1
    return out


def conversation_max_tokens(c: Conversation, workload: Workload) -> int:
    """max_tokens of a request from `c`: its recorded answer's words when the dataset says so."""
    d = workload.dataset
    if d is not None and d.answer_len_as_max_tokens and c.answer_words:
        return c.answer_words
    return workload.max_tokens


def fit_conversations(
    convs: list[Conversation],
    workload: Workload,
    context: int | None,
    token_lengths: dict[int, int] | None = None,
    template_tokens: tuple[int, int] | None = None,
) -> Fitted[Conversation]:
    """`token_lengths`: first turns in the server's tokens; `template_tokens`: the chat
    template's tokens around a user message / a system and a user message."""
    out = Fitted[Conversation]([])
    for c in convs:
        first = (token_lengths or {}).get(c.index)
        around = 0  # the chat template's tokens, when measured
        if first is not None and template_tokens is not None:
            around = template_tokens[1] if c.system else template_tokens[0]
        first = estimate_tokens(c.first) if first is None else first
        other = around + (estimate_tokens(c.system) if c.system else 0)
        max_tokens = conversation_max_tokens(c, workload)
        if context is None or first + other + max_tokens <= context:
            out.items.append(c)
            continue
        out.over += 1
        budget = context - max_tokens - other  # tokens left for the first user turn
        if workload.context_overflow == "report":
            out.items.append(c)
        elif workload.context_overflow == "clip" and budget >= 1:
            out.clipped += 1
            out.changed.add(len(out.items))
            text = _clip(c.first, len(c.first) * budget // first)
            out.items.append(dataclasses.replace(c, turns=(text, *c.turns[1:])))
        else:
            out.skipped += 1
    return out


def _clip(text: str, chars: int) -> str:
    """The first `chars` characters of `text`, ending at a word boundary when one is there."""
    cut = text[: max(1, chars)]
    if len(cut) < len(text):
        head = cut.rsplit(None, 1)[0]
        cut = head if head.strip() and head != cut else cut
    return cut


def counted_how(tokenizer: bool, template_known: bool) -> str:
    if not tokenizer:
        return f"prompt tokens estimated at {CHARS_PER_TOKEN} characters a token"
    template = "with the chat template" if template_known else "chat template not counted"
    return f"first turns counted by the server's /tokenize, {template}"
