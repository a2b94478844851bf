"""Conversations files read as a stream, and the conversations a run draws its prompts from.

Two containers: one conversation a line (JSONL), or one JSON array of them (the ShareGPT file
that vLLM's bench and guidellm read, hundreds of MB: parsed entry by entry with ijson, so memory
does not grow with the file). Two layouts of a conversation: ShareGPT {"id": ..., "conversations":
[{"from": "human", "value": ...}, {"from": "gpt", ...}]} and {"messages": [{"role": "user",
"content": ...}, ...]}. An entry's `id` is kept, so a request can be traced back to it.

An entry with no usable conversation (empty, no user turn, malformed, a line that is not JSON) is
skipped and counted; `Conversations.skipped_line` says how many, why, and where the first of each
kind is. A file none of whose first entries is a conversation is not a dataset: a ConfigError
naming the file and the first problems (exit 2). So is JSON that breaks off inside an array:
nothing after it can be read.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import ijson

from harness.errors import ConfigError, ConfigProblem
from harness.spec.load import Dataset

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}
# This many entries without one conversation among them: the file is not a dataset.
PROBE_ENTRIES = 100
# Conversations a run keeps without a `limit`: past this many passing the filters, a uniform
# sample of this size (drawn by the seed), so memory stays bounded whatever the file's size.
POOL = 10_000
_FIELD = "workload.dataset.path"


@dataclass(frozen=True)
class Conversation:
    index: int  # line (JSONL) or entry (JSON array) number in the file, 1-based
    system: str | None
    turns: tuple[str, ...]  # user messages, in order
    answer_words: int | None = None  # words of the first recorded answer; None: no answer
    id: str | None = None  # the entry's own "id"

    @property
    def first(self) -> str:
        return self.turns[0]


def _conversation(index: int, obj: Any) -> Conversation | tuple[str, str]:
    """The entry's conversation, or (kind, reason) of why it holds none."""
    if not isinstance(obj, dict):
        return "not a conversation", "expected a JSON object"
    if isinstance(obj.get("conversations"), list):
        items, role_key, text_key = obj["conversations"], "from", "value"
    elif isinstance(obj.get("messages"), list):
        items, role_key, text_key = obj["messages"], "role", "content"
    else:
        return "not a conversation", 'expected a "conversations" or a "messages" list'
    if not items:
        return "empty", "no turns"
    pairs = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(text_key), str):
            return "malformed turn", f"turn {i + 1}: expected an object with a string {text_key!r}"
        pairs.append((str(item.get(role_key, "")).lower(), item[text_key]))
    turns = tuple(t for r, t in pairs if r in _USER and t.strip())
    if not turns:
        return "no user turn", "no user turn (from human / role user)"
    answer = next((t for r, t in pairs if r in _ASSISTANT), None)
    raw_id = obj.get("id")
    return Conversation(
        index=index,
        system=next((t for r, t in pairs if r == "system"), None),
        turns=turns,
        answer_words=len(answer.split()) if answer is not None else None,
        id=str(raw_id) if isinstance(raw_id, str | int) and not isinstance(raw_id, bool) else None,
    )


class Conversations:
    """The conversations of a file, read from the start on each iteration. After one, `entries`
    and `skipped` (kind -> count and where the first was) describe what that pass read."""

    def __init__(self, path: Path, field: str = _FIELD) -> None:
        self.path = path
        self.field = field
        self.entries = 0
        self.skipped: dict[str, tuple[int, str]] = {}

    def __iter__(self) -> Iterator[Conversation]:
        self.entries, self.skipped = 0, {}
        problems: list[ConfigProblem] = []
        found = False
        for where, index, obj in self._entries():
            self.entries += 1
            conv = obj.reason if isinstance(obj, _Unreadable) else _conversation(index, obj)
            if isinstance(conv, Conversation):
                found = True
                yield conv
                continue
            kind, why = conv
            count, first = self.skipped.get(kind, (0, where))
            self.skipped[kind] = (count + 1, first)
            if len(problems) < 5:
                problems.append(ConfigProblem(where, why))
            if not found and self.entries >= PROBE_ENTRIES:
                raise self._not_a_dataset(problems)
        if not found:
            raise self._not_a_dataset(problems)

    def _not_a_dataset(self, problems: list[ConfigProblem]) -> ConfigError:
        head = (
            f"none of the first {self.entries} entries is a conversation (expected ShareGPT "
            '{"conversations": [{"from": "human", "value": ...}]} or {"messages": [{"role": '
            '"user", "content": ...}]}, one a line or all in one JSON array)'
            if self.entries
            else "the file holds no conversation"
        )
        return ConfigError(str(self.path), [ConfigProblem(self.field, head), *problems])

    def _entries(self) -> Iterator[tuple[str, int, Any]]:
        try:
            f = self.path.open("rb")
        except OSError as exc:
            problem = ConfigProblem(self.field, f"cannot read: {exc}")
            raise ConfigError(str(self.path), [problem]) from None
        with f:
            if _is_array(f):
                yield from self._array(f)
            else:
                yield from self._lines(f)

    def _array(self, f: IO[bytes]) -> Iterator[tuple[str, int, Any]]:
        n = 0
        try:
            for n, obj in enumerate(ijson.items(f, "item", use_float=True), 1):
                yield f"entry {n}", n, obj
        except (ijson.JSONError, ValueError) as exc:
            raise ConfigError(
                str(self.path),
                [ConfigProblem(f"entry {n + 1}", f"not JSON ({exc}): nothing after it is read")],
            ) from None

    def _lines(self, f: IO[bytes]) -> Iterator[tuple[str, int, Any]]:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj: Any = json.loads(line)
            except ValueError as exc:
                obj = _Unreadable(("not JSON", f"not JSON ({exc})"))
            yield f"line {n}", n, obj

    def skipped_line(self) -> str | None:
        """One line for every entry skipped in the last pass (None: none was)."""
        n = sum(count for count, _ in self.skipped.values())
        if not n:
            return None
        kinds = sorted(self.skipped.items(), key=lambda kv: -kv[1][0])
        why = "; ".join(f"{kind} {count} (first at {first})" for kind, (count, first) in kinds)
        return f"{n} of {self.entries} entries read skipped: {why}"


@dataclass(frozen=True)
class _Unreadable:
    reason: tuple[str, str]  # kind, why: a JSONL line that is not JSON


def _is_array(f: IO[bytes]) -> bool:
    """The file is one JSON array (leading whitespace aside); `f` is left past a UTF-8 BOM."""
    head = f.read(4096)
    start = 3 if head.startswith(b"\xef\xbb\xbf") else 0
    f.seek(start)
    return head[start:].lstrip().startswith(b"[")


def read_conversations(path: Path, field: str = _FIELD) -> Conversations:
    """The file's conversations, read as a stream each time they are iterated."""
    return Conversations(path, field)


def words(text: str) -> int:
    return len(text.split())


@dataclass
class Selection:
    conversations: list[Conversation]  # in file order
    lengths: dict[int, int]  # index -> the first turn's length the filters saw
    read: int  # conversations read
    passed: int  # of them, those passing the length filters
    how: str  # how the conversations were chosen, for the run's output


def select(
    conversations: Iterable[Conversation],
    dataset: Dataset,
    token_lengths: dict[int, int] | None = None,
    *,
    seed: int = 0,
    length: Callable[[Conversation], int] | None = None,
    pool: int = POOL,
) -> Selection:
    """The conversations whose first user turn passes the length filters (words, or `length`'s
    count: the model's tokens): the first `limit` of them (reading stops there), else all of them
    up to `pool`, a uniform sample by the seed past that. None kept is a configuration error.

    `token_lengths` (a Locust worker): the conversations chosen in tokens before the run, by line,
    kept as they were chosen."""
    if token_lengths is not None:
        return _chosen(conversations, dataset, token_lengths)
    count = length or (lambda c: words(c.first))
    unit = "tokens" if length is not None else "words"
    lo, hi = dataset.min_prompt_len, dataset.max_prompt_len
    rng = random.Random(f"{seed}:dataset")
    kept: list[tuple[Conversation, int]] = []
    read = passed = 0
    for c in conversations:
        read += 1
        n = count(c)
        if n < lo or (hi is not None and n > hi):
            continue
        passed += 1
        if len(kept) < (dataset.limit or pool):
            kept.append((c, n))
            if len(kept) == dataset.limit:
                break
        elif (j := rng.randrange(passed)) < pool:
            kept[j] = (c, n)  # reservoir sampling: each passing one kept with equal chance
    if not kept:
        problem = ConfigProblem(
            "workload.dataset.min_prompt_len/max_prompt_len",
            f"no conversation of {read} has a first user turn of {lo}..{hi or 'any'} {unit}",
        )
        raise ConfigError(dataset.path, [problem])
    kept.sort(key=lambda cn: cn[0].index)
    if dataset.limit is not None:
        how = f"the first {len(kept)} conversations passing the length filters (limit)"
    elif passed > len(kept):
        how = f"{len(kept)} of the {passed} conversations passing the length filters (a sample)"
    else:
        how = f"the {passed} conversations passing the length filters ({lo}..{hi or 'any'} {unit})"
    return Selection([c for c, _ in kept], {c.index: n for c, n in kept}, read, passed, how)


def _chosen(
    conversations: Iterable[Conversation], dataset: Dataset, token_lengths: dict[int, int]
) -> Selection:
    kept: list[Conversation] = []
    read = 0
    for c in conversations:
        read += 1
        if c.index in token_lengths:
            kept.append(c)
            if len(kept) == len(token_lengths):
                break
    if not kept:
        problem = ConfigProblem(
            _FIELD, "none of the conversations chosen in tokens before the run is in the file"
        )
        raise ConfigError(dataset.path, [problem])
    how = f"the {len(kept)} conversations chosen by their first turn's tokens"
    return Selection(kept, {c.index: token_lengths[c.index] for c in kept}, read, len(kept), how)
