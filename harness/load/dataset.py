"""Conversations files (JSONL) read into user turns and recorded answers.

Two layouts, one conversation a line: ShareGPT-style {"conversations": [{"from": "human", "value":
...}, {"from": "gpt", "value": ...}]} and {"messages": [{"role": "user", "content": ...}, ...]}.
A line in neither layout, or with no user turn, is a configuration error naming file and line:
a dataset that silently shrinks would change the workload without saying so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ConfigProblem
from harness.spec.load import Dataset

_USER = {"human", "user"}
_ASSISTANT = {"gpt", "assistant", "chatgpt", "bard", "bing", "model"}


@dataclass(frozen=True)
class Conversation:
    index: int  # line number (1-based) in the file
    system: str | None
    turns: tuple[str, ...]  # user messages, in order
    answers: tuple[str, ...]  # recorded assistant answers (may be fewer than turns)

    @property
    def first(self) -> str:
        return self.turns[0]


def _turns(obj: Any) -> list[tuple[str, str]] | str:
    """(role, text) pairs, or the reason the line has none."""
    if not isinstance(obj, dict):
        return "expected a JSON object"
    if isinstance(obj.get("conversations"), list):
        items, role_key, text_key = obj["conversations"], "from", "value"
    elif isinstance(obj.get("messages"), list):
        items, role_key, text_key = obj["messages"], "role", "content"
    else:
        return 'expected a "conversations" or a "messages" list'
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get(text_key), str):
            return f"turn {i + 1}: expected an object with a string {text_key!r}"
        out.append((str(item.get(role_key, "")).lower(), item[text_key]))
    return out


def _conversation(index: int, pairs: list[tuple[str, str]]) -> Conversation | None:
    system = next((t for r, t in pairs if r == "system"), None)
    turns = tuple(t for r, t in pairs if r in _USER and t.strip())
    answers = tuple(t for r, t in pairs if r in _ASSISTANT)
    if not turns:
        return None
    return Conversation(index=index, system=system, turns=turns, answers=answers)


def read_conversations(path: Path, field: str = "workload.dataset.path") -> list[Conversation]:
    """Every conversation of the file; a ConfigError (file, line, what was expected) otherwise."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem(field, f"cannot read: {exc}")]) from None
    out: list[Conversation] = []
    problems: list[ConfigProblem] = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            pairs = _turns(json.loads(line))
        except ValueError as exc:
            pairs = f"not JSON ({exc})"
        if isinstance(pairs, str):
            problems.append(ConfigProblem(f"line {n}", pairs))
        elif (conv := _conversation(n, pairs)) is None:
            problems.append(ConfigProblem(f"line {n}", "no user turn (from human / role user)"))
        else:
            out.append(conv)
        if len(problems) >= 5:
            break
    if problems:
        raise ConfigError(str(path), problems)
    if not out:
        raise ConfigError(str(path), [ConfigProblem(field, "the file holds no conversation")])
    return out


def words(text: str) -> int:
    return len(text.split())


def select(
    conversations: list[Conversation], dataset: Dataset, token_lengths: dict[int, int] | None = None
) -> list[Conversation]:
    """The conversations the length filters keep (tokens when given by line, else words), at most
    `limit` of them, in file order. None kept is a configuration error."""

    def length(c: Conversation) -> int:
        if token_lengths is not None and c.index in token_lengths:
            return token_lengths[c.index]
        return words(c.first)

    hi = dataset.max_prompt_len
    kept = [
        c
        for c in conversations
        if length(c) >= dataset.min_prompt_len and (hi is None or length(c) <= hi)
    ]
    if dataset.limit is not None:
        kept = kept[: dataset.limit]
    if not kept:
        unit = "tokens" if token_lengths is not None else "words"
        raise ConfigError(
            dataset.path,
            [
                ConfigProblem(
                    "workload.dataset.min_prompt_len/max_prompt_len",
                    f"no conversation of {len(conversations)} has a first user turn of "
                    f"{dataset.min_prompt_len}..{hi or 'any'} {unit}",
                )
            ],
        )
    return kept
