"""The instrumented HTTP client of the LLM user: gevent sockets + geventhttpclient's C parser.

Why not FastHttpUser's session or httpx: the session times a streamed request only up to its
headers and retries/redirects behind our back; httpx needs monkey-patching here and parses in pure
Python (several times the CPU per request on a 2-core box, which shows up as client-side latency).
Owning the socket lets every received segment be stamped the moment `recv` returns, and the parser
callback hands the body straight to the SSE interpreter: no line buffering between wire and clock.

One client per closed-loop user (one keep-alive connection, like a real client); the open-loop
pacer shares one client whose idle pool grows to its in-flight cap.
"""

from __future__ import annotations

import contextlib
import socket as pysocket
from urllib.parse import urlsplit

import gevent
import gevent.socket
import gevent.ssl
import orjson
from geventhttpclient.response import HTTPParseError, HTTPResponse

from harness import wire
from harness.clients import server_timing
from harness.clients.sse import StreamInterpreter
from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
from harness.load import clock
from harness.load.workload import RequestPlan
from harness.wire import Wire

_MAX_BODY = 1 << 20  # non-streamed bodies kept for parsing, beyond this only counted


class _Response(HTTPResponse):
    """Parser callbacks: stamp headers, route body bytes to the interpreter as they arrive."""

    def __init__(self, interp: StreamInterpreter) -> None:
        super().__init__(method="POST")
        self.interp = interp
        self.recv_s = 0.0  # arrival time of the bytes being fed
        self.headers_s: float | None = None
        self.stream = False
        self.body = bytearray()
        self.body_bytes = 0

    def _on_headers_complete(self) -> int | bool | None:
        result = super()._on_headers_complete()
        if self.get_code() >= 200:
            self.headers_s = self.recv_s
            self.stream = "text/event-stream" in self.header("content-type").lower()
        return result

    def _on_body(self, buf: bytearray) -> None:
        self.body_bytes += len(buf)
        if self.stream and self.get_code() < 400:
            self.interp.feed(bytes(buf), self.recv_s)
        elif len(self.body) < _MAX_BODY:
            self.body += buf

    def header(self, name: str) -> str:
        v = self.get(name)
        if isinstance(v, list):
            return v[0] if v else ""
        return v or ""


class _Failed(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class LLMClient:
    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 5.0,
        request_timeout_s: float = 60.0,
        run_tag: str = "run",
        worker: int = 0,
        max_idle: int = 1000,
        names: Wire | None = None,
    ) -> None:
        u = urlsplit(base_url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError(f"target must be an http(s) URL, got {base_url!r}")
        self.host = u.hostname
        self.tls = u.scheme == "https"
        self.port = u.port or (443 if self.tls else 80)
        self.prefix = u.path.rstrip("/")
        self.host_header = u.netloc
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.run_tag = run_tag
        self.worker = worker
        self.max_idle = max_idle
        self.names = names or wire.current()  # the gateway's header names (harness.wire)
        self._idle: list[gevent.socket.socket] = []
        self._ssl = gevent.ssl.create_default_context() if self.tls else None
        # The text of the last answer, for a request planned with keep_text (one user per client).
        self.last_text = ""

    # --- connections -------------------------------------------------------------------------
    def _connect(self) -> gevent.socket.socket:
        try:
            sock = gevent.socket.create_connection(
                (self.host, self.port), timeout=self.connect_timeout_s
            )
        except OSError as exc:
            raise _Failed("connect", f"connect {self.host}:{self.port}: {exc}") from None
        sock.setsockopt(pysocket.IPPROTO_TCP, pysocket.TCP_NODELAY, 1)
        if self._ssl is not None:
            sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
        return sock

    def _checkout(self) -> tuple[gevent.socket.socket, bool]:
        if self._idle:
            return self._idle.pop(), True
        return self._connect(), False

    def _checkin(self, sock: gevent.socket.socket) -> None:
        if len(self._idle) < self.max_idle:
            self._idle.append(sock)
        else:
            sock.close()

    def close(self) -> None:
        while self._idle:
            self._idle.pop().close()

    # --- one request -------------------------------------------------------------------------
    def _auth_line(self, api_key: str) -> str:
        return "".join(f"{k}: {v}\r\n" for k, v in self.names.auth(api_key).items())

    def _request_bytes(self, plan: RequestPlan, request_id: str) -> bytes:
        head = (
            f"POST {self.prefix}{plan.path} HTTP/1.1\r\n"
            f"Host: {self.host_header}\r\n"
            "Content-Type: application/json\r\n"
            f"Accept: {'text/event-stream' if plan.stream else 'application/json'}\r\n"
            f"{self._auth_line(plan.api_key)}"
            f"{self.names.request_id}: {request_id}\r\n"
            f"Content-Length: {len(plan.body)}\r\n"
            "\r\n"
        )
        return head.encode() + plan.body

    def execute(self, plan: RequestPlan, intended_s: float | None = None) -> Sample:
        request_id = f"{self.run_tag}-{self.worker}-{plan.seq}"
        data = self._request_bytes(plan, request_id)
        interp = StreamInterpreter(keep_text=plan.keep_text)
        resp = _Response(interp)
        error: _Failed | None = None
        sock: gevent.socket.socket | None = None
        keep = False
        retries = 0
        sent = clock.now()
        timer = gevent.Timeout(self.request_timeout_s)
        timer.start()
        try:
            sock, reused = self._checkout()
            sock.settimeout(self.request_timeout_s)
            if not self._exchange(sock, data, resp) and reused:
                # A pooled keep-alive connection the server had already closed: nothing came
                # back, so the request is sent again, once, on a NEW connection. Another pooled
                # one may be just as stale (servers close idle connections in batches). The
                # clock restarts: the lost attempt is the client's delay (send lag), not the
                # server's latency.
                sock.close()
                sock = None
                retries = 1
                sent = clock.now()
                sock = self._connect()
                sock.settimeout(self.request_timeout_s)
                self._exchange(sock, data, resp)
            if not resp.message_complete:
                raise _Failed("incomplete", "connection closed before the response ended")
            keep = resp.should_keep_alive()
        except gevent.Timeout as exc:
            if exc is not timer:
                raise
            error = _Failed("timeout", f"no complete response within {self.request_timeout_s:g}s")
        except _Failed as exc:
            error = exc
        except TimeoutError:
            error = _Failed("timeout", f"read stalled for {self.request_timeout_s:g}s")
        except HTTPParseError as exc:
            error = _Failed("protocol", f"HTTP parse error: {exc}")
        except OSError as exc:
            error = _Failed("incomplete", f"{type(exc).__name__}: {exc}")
        finally:
            timer.cancel()
            if sock is not None:
                if keep and error is None:
                    self._checkin(sock)
                else:
                    sock.close()
        end = clock.now()
        sample = self._sample(plan, intended_s, sent, end, resp, interp, error, request_id)
        sample.retries = retries
        self.last_text = "".join(interp.text)
        return sample

    @staticmethod
    def _exchange(sock: gevent.socket.socket, data: bytes, resp: _Response) -> bool:
        """Send the request and read until the response is complete; False if nothing came back."""
        try:
            sock.sendall(data)
        except OSError:
            return False
        got = False
        while not resp.message_complete:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                if not got:
                    return False
                raise
            resp.recv_s = clock.now()
            if not chunk:
                if got and not resp.message_complete:
                    # EOF completes a body delimited by the connection close; any other
                    # body is cut short (the caller reports it as incomplete).
                    with contextlib.suppress(HTTPParseError):
                        resp.feed(b"")
                return got
            got = True
            resp.feed(chunk)
        return True

    def _sample(
        self,
        plan: RequestPlan,
        intended_s: float | None,
        sent: float,
        end: float,
        resp: _Response,
        interp: StreamInterpreter,
        failure: _Failed | None,
        request_id: str,
    ) -> Sample:
        status = resp.get_code() if resp.headers_s is not None else 0
        s = Sample(
            worker=self.worker,
            seq=plan.seq,
            kind=plan.kind,
            tenant=plan.tenant,
            prompt_id=plan.prompt_id,
            repeated=plan.repeated,
            intended_s=intended_s,
            sent_s=sent,
            e2e_ms=(end - sent) * 1000.0,
            status=status,
            client_request_id=request_id,
            turn=plan.turn,
            prefix_group=plan.prefix_group,
            planned_tokens=plan.planned_tokens,
            dataset_id=plan.dataset_id,
        )
        if resp.headers_s is not None:
            s.ttfb_ms = (resp.headers_s - sent) * 1000.0
            s.x_cache = resp.header(self.names.cache.lower()) or None
            s.x_served_by = resp.header(self.names.served_by.lower()) or None
            s.x_request_id = resp.header(self.names.request_id.lower()) or None
            s.x_version = resp.header(self.names.version.lower()) or None
            if status >= 400:
                s.retry_after = resp.header("retry-after") or None
            timing = server_timing.durations(resp.header("server-timing"))
            if timing:
                s.gateway_ms = timing.get(server_timing.GATEWAY)
                s.upstream_ms = timing.get(server_timing.UPSTREAM)
        if failure is None and status < 400 and not resp.stream:
            try:
                interp.message(orjson.loads(resp.body), end)
            except ValueError:
                failure = _Failed("protocol", f"body is not JSON: {bytes(resp.body[:80])!r}")
        elif resp.stream:
            interp.end(end)
        if failure is not None:
            s.error, s.error_detail = failure.kind, failure.detail
        elif status >= 400:
            s.error, s.error_detail = "http", bytes(resp.body[:200]).decode("utf-8", "replace")
        elif interp.error is not None:
            s.error, s.error_detail = interp.error, interp.error_detail
        elif resp.stream and not interp.complete():
            s.error, s.error_detail = "incomplete", STREAM_ENDED_SILENTLY
        if interp.first_text_s is not None:
            s.ttft_ms = (interp.first_text_s - sent) * 1000.0
        if interp.first_event_s is not None:
            s.first_event_ms = (interp.first_event_s - sent) * 1000.0
        s.server_prefill_ms = interp.server_prefill_ms
        s.server_decode_ms = interp.server_decode_ms
        s.token_gaps_ms = [round(g, 3) for g in interp.gaps_ms]
        s.output_tokens = interp.output_tokens
        s.prompt_tokens = interp.prompt_tokens
        s.output_chunks = interp.chunks
        s.finish_reason = interp.finish_reason
        s.cached_tokens = interp.cached_tokens
        return s
