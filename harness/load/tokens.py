"""Prompt sizes in the serving model's own tokens, through the model server's `/tokenize`.

llama.cpp (`{"content": ...}`) and vLLM (`{"model": ..., "prompt": ...}`) both answer
`{"tokens": [...]}`; one body carries both fields. The harness calls the model server itself (a
stack's primary model server; `--target` itself otherwise): the gateway serves the OpenAI API only.

The chat template's own tokens are measured too (llama.cpp: `/apply-template`, then `/tokenize`
with its special tokens; vLLM: `/tokenize` of the messages), so a planned size is what the server
will count for the whole prompt, and a trace's input length is matched as the server counts it.

Sizing is measured once per run and kept in the run folder (`tokens.json`, reused when the same
server, model and dataset are asked again): which vocabulary words are exactly one token both
after a space and at the start of a message (a shared prefix's first word has no space before it
inside the template, and some words are two tokens there), how many tokens the instruction takes,
and the first-turn length of each dataset conversation the run uses: the file is read as a stream,
each first turn tokenized and filtered, and only the conversations kept (`dataset.select`) are
stored. A check tokenizes one generated prompt whole and records whether its count is what the
sizing predicts; a second check does the same for a whole chat request (a system message of
one-token words and the user message, inside the template), so a tokenizer that merges across
words or messages is seen, not assumed.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from harness.clients.http import new_client
from harness.errors import StackError
from harness.load.dataset import read_conversations, select
from harness.load.workload import INSTRUCTION, VOCAB
from harness.spec.load import Dataset

CACHE_NAME = "tokens.json"
_CHECK_WORDS = 64


class TokenizeError(StackError):
    """The model server's /tokenize did not answer as llama.cpp or vLLM do."""


@dataclass
class TokenSizing:
    url: str
    model: str
    one_token_words: list[str]
    instruction_tokens: int
    token_lengths: dict[int, int]  # dataset conversation kept (line) -> first-turn tokens
    check_words: int  # the check prompt: words after the instruction
    check_tokens: int  # ... and the tokens the server counted for the whole prompt
    # Tokens the chat template adds around one user message, and around a system message and a
    # user message; None when the server cannot say (then sizes are the messages' own tokens).
    template_user: int | None = None
    template_system_user: int | None = None
    # The dataset file (path, size, modification time), its filters and the seed measured for.
    dataset_key: str | None = None
    # The whole-request check: tokens the server counted for a system message of
    # `check_words` one-token words and the check prompt, inside the template (None when the
    # server cannot apply its template).
    check_chat_tokens: int | None = None

    @property
    def exact(self) -> bool:
        if self.check_tokens != self.instruction_tokens + self.check_words:
            return False
        if self.check_chat_tokens is None or self.template_system_user is None:
            return True
        want = self.instruction_tokens + 2 * self.check_words + self.template_system_user
        return self.check_chat_tokens == want


class Tokenizer:
    def __init__(self, url: str, model: str, api_key: str = "", timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = new_client(headers=headers, timeout=timeout_s)

    def count(self, text: str) -> int:
        body = {
            "content": text,
            "prompt": text,
            "model": self.model,
            "add_special": False,
            "add_special_tokens": False,
        }
        try:
            r = self._http.post(f"{self.url}/tokenize", json=body)
            r.raise_for_status()
            tokens = r.json()["tokens"]
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            raise TokenizeError(
                f"POST {self.url}/tokenize failed ({type(exc).__name__}: {exc}); "
                "workload.tokenizer needs a llama.cpp or vLLM model server"
            ) from None
        if not isinstance(tokens, list):
            raise TokenizeError(f"{self.url}/tokenize answered no token list")
        return len(tokens)

    def chat(self, messages: list[dict[str, str]]) -> int | None:
        """Tokens the server counts for `messages` as one chat request, template included;
        None when it cannot say."""
        try:
            r = self._http.post(f"{self.url}/apply-template", json={"messages": messages})
            if r.status_code == 200 and isinstance(r.json().get("prompt"), str):
                body = {"content": r.json()["prompt"], "add_special": True}
                return len(self._http.post(f"{self.url}/tokenize", json=body).json()["tokens"])
            body2 = {"model": self.model, "messages": messages, "add_generation_prompt": True}
            r = self._http.post(f"{self.url}/tokenize", json=body2)
            if r.status_code == 200 and isinstance(r.json().get("tokens"), list):
                return len(r.json()["tokens"])
        except (httpx.HTTPError, ValueError, KeyError, TypeError):
            pass
        return None

    def template(self, messages: list[dict[str, str]]) -> int | None:
        """Tokens the chat template adds to `messages` (each message's own tokens taken off)."""
        whole = self.chat(messages)
        return None if whole is None else whole - sum(self.count(m["content"]) for m in messages)

    def close(self) -> None:
        self._http.close()


def measure(tok: Tokenizer, dataset: Dataset | None = None, seed: int = 0) -> TokenSizing:
    """What the module docstring says, in one pass over the server (one request per word and
    per dataset conversation read)."""
    # One token both ways: inside a prompt a word follows a space, but the first word of a
    # message (a shared prefix is a system message of its own) follows the template's newline.
    one = [w for w in VOCAB if tok.count(f" {w}") == 1 and tok.count(w) == 1]
    if len(one) < 16:
        raise TokenizeError(
            f"only {len(one)} of {len(VOCAB)} vocabulary words are one token for this model: "
            "token-sized prompts need at least 16"
        )
    instruction = tok.count(INSTRUCTION)
    words = random.Random("tokens:check").choices(one, k=_CHECK_WORDS)
    check = tok.count(f"{INSTRUCTION} {' '.join(words)}")
    lengths = (
        select(
            read_conversations(Path(dataset.path)),
            dataset,
            seed=seed,
            length=lambda c: tok.count(c.first),
        ).lengths
        if dataset is not None
        else {}
    )
    user = [{"role": "user", "content": "hello"}]
    system = [{"role": "system", "content": "hello"}, *user]
    prefix = random.Random("tokens:check-prefix").choices(one, k=_CHECK_WORDS)
    whole = [
        {"role": "system", "content": " ".join(prefix)},
        {"role": "user", "content": f"{INSTRUCTION} {' '.join(words)}"},
    ]
    return TokenSizing(
        tok.url,
        tok.model,
        one,
        instruction,
        lengths,
        _CHECK_WORDS,
        check,
        tok.template(user),
        tok.template(system),
        _dataset_key(dataset, seed),
        tok.chat(whole),
    )


def _dataset_key(dataset: Dataset | None, seed: int) -> str | None:
    if dataset is None:
        return None
    try:
        st = Path(dataset.path).stat()
    except OSError:
        return None
    return f"{dataset.model_dump_json()} seed {seed} size {st.st_size} mtime {st.st_mtime_ns}"


def sizing_for_run(
    run_dir: Path,
    url: str,
    model: str,
    api_key: str = "",
    dataset: Dataset | None = None,
    seed: int = 0,
) -> TokenSizing:
    """The run folder's sizing when it was measured for this server, model, dataset and seed;
    else measured now and stored there."""
    path = run_dir / CACHE_NAME
    try:
        d = json.loads(path.read_text())
        d["token_lengths"] = {int(k): int(v) for k, v in d["token_lengths"].items()}
        cached = TokenSizing(**d)
        if (
            cached.url == url.rstrip("/")
            and cached.model == model
            and cached.dataset_key == _dataset_key(dataset, seed)
        ):
            return cached
    except (OSError, ValueError, KeyError, TypeError):
        pass
    tok = Tokenizer(url, model, api_key)
    try:
        sizing = measure(tok, dataset, seed)
    finally:
        tok.close()
    path.write_text(json.dumps(asdict(sizing), indent=1))
    return sizing
