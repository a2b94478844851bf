"""OpenAI-style error bodies: `{"error": {"message", "type", "code", "param"}}`."""

from __future__ import annotations

from starlette.responses import JSONResponse

DEGRADED_MESSAGE = "I'm experiencing technical difficulties. Please try again."


class GatewayError(Exception):
    """An error answered to the client as JSON with the given status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_
        self.code = code
        self.param = param
        self.headers = headers or {}


def error_body(
    message: str, type_: str, code: str | None = None, param: str | None = None
) -> dict[str, object]:
    return {"error": {"message": message, "type": type_, "code": code, "param": param}}


def error_response(err: GatewayError) -> JSONResponse:
    return JSONResponse(
        error_body(err.message, err.type, err.code, err.param),
        status_code=err.status,
        headers=err.headers,
    )
