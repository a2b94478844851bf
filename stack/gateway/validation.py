"""Input validation (PRACTICES.md section 6): JSON, parameter ranges, prompt length, injection.

Unknown fields are kept and forwarded (llama.cpp and vLLM accept many extensions such as
`ignore_eos` or `n_predict`); known ones are type- and range-checked so a bad request is a 400,
never a 500 further down.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from gateway.errors import GatewayError

Endpoint = Literal["chat", "completion"]


class _Params(BaseModel):
    model_config = ConfigDict(extra="allow")

    model: str | None = None
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, ge=0, le=1)
    n: int | None = Field(None, ge=1, le=16)
    stream: bool | None = None
    stop: str | list[str] | None = None
    seed: int | None = None
    stream_options: dict[str, Any] | None = None


class _ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")

    type: str
    text: str | None = None


class _Message(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[_ContentPart] | None = None


class ChatParams(_Params):
    messages: list[_Message] = Field(min_length=1)


class CompletionParams(_Params):
    prompt: str | list[str]


@dataclass(frozen=True)
class ParsedRequest:
    endpoint: Endpoint
    body: dict[str, Any]  # the client's JSON, as sent
    prompt_text: str  # every piece of prompt text joined: what injection checks read
    prompt_chars: int  # characters of prompt text (separators not counted): the length check
    stream: bool
    include_usage: bool  # the client asked for the usage chunk in a stream


def parse_request(raw: bytes, endpoint: Endpoint, max_body_bytes: int) -> ParsedRequest:
    if len(raw) > max_body_bytes:
        raise GatewayError(
            413,
            f"request body is {len(raw)} bytes; the limit is {max_body_bytes} bytes",
            code="request_too_large",
        )
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as e:
        raise GatewayError(400, f"request body is not valid JSON: {e}", code="invalid_json") from e
    if not isinstance(body, dict):
        raise GatewayError(400, "request body must be a JSON object", code="invalid_json")
    model = ChatParams if endpoint == "chat" else CompletionParams
    try:
        params = model.model_validate(body)
    except ValidationError as e:
        first = e.errors()[0]
        param = ".".join(str(p) for p in first["loc"])
        raise GatewayError(
            400,
            f"invalid parameter {param!r}: {first['msg']}",
            code="invalid_parameter",
            param=param,
        ) from e
    opts = params.stream_options or {}
    parts = _prompt_parts(params)
    return ParsedRequest(
        endpoint=endpoint,
        body=body,
        prompt_text="\n".join(parts),
        prompt_chars=sum(len(p) for p in parts),
        stream=bool(params.stream),
        include_usage=bool(opts.get("include_usage")),
    )


def _prompt_parts(params: _Params) -> list[str]:
    if isinstance(params, ChatParams):
        parts: list[str] = []
        for m in params.messages:
            if isinstance(m.content, str):
                parts.append(m.content)
            elif m.content is not None:
                parts.extend(p.text for p in m.content if p.text)
        return parts
    assert isinstance(params, CompletionParams)
    return [params.prompt] if isinstance(params.prompt, str) else list(params.prompt)


def check_prompt_length(prompt_chars: int, max_chars: int) -> None:
    if prompt_chars > max_chars:
        raise GatewayError(
            413,
            f"prompt is {prompt_chars} characters; the limit is {max_chars} characters",
            code="prompt_too_long",
            param="prompt",
        )


def find_injections(prompt_text: str, patterns: tuple[str, ...]) -> list[str]:
    """Patterns (case-insensitive substrings, as in PRACTICES.md) found in the prompt."""
    lowered = prompt_text.lower()
    return [p for p in patterns if p.lower() in lowered]
