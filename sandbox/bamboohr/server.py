"""The sandbox on a real socket: a threading HTTP/1.1 server (keep-alive) in a background thread."""

from __future__ import annotations

import email.utils
import secrets
import socket
import threading
from collections.abc import Collection
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from sandbox.bamboohr.app import DEFAULT_ERROR_HEADERS, BearerCheck, SandboxApp
from sandbox.bamboohr.data import Company, seed_company
from sandbox.bamboohr.wire import Exchange, Logged, Request, Response


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: listing thousands of employees must not pay a connect each time
    server_version = "BambooHR-Sandbox"
    sys_version = ""
    app: SandboxApp

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in one write; no Nagle delay on small answers.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _handle(self) -> None:
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            response = self.app.handle(Request(self.command, path, query, headers, body))
        except Exception:  # a sandbox bug must still answer like a server would, not hang the client
            response = Response(
                500, [("Content-Type", "text/html")], b"<html><body>Internal Server Error</body></html>"
            )
        try:
            reason = HTTPStatus(response.status).phrase
        except ValueError:
            reason = ""
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {email.utils.formatdate(usegmt=True)}"]
        lines.append(f"Server: {self.server_version}")
        lines += [f"{name}: {value}" for name, value in response.headers]
        lines.append(f"Content-Length: {len(response.body)}")
        self.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests and demos print their own
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


class BambooHRSandbox:
    """A stateful BambooHR-compatible server on loopback.

    >>> with BambooHRSandbox(api_key="k", employees=50) as sandbox:
    ...     sandbox.url   # http://127.0.0.1:PORT/api/v1/ (also /api/gateway.php/acme/v1/)

    Faults for resilience tests and demos (also over HTTP: ``POST /__sandbox__/faults``, see
    ``control.FaultInjector.apply``): ``throttle`` (429 + Retry-After, as BambooHR since 16 September
    2026; ``status=503`` for the old throttle), ``hit_employee_limit`` (add-employee's 429 "Limit
    Exceeded", no Retry-After), ``fail`` (any 4xx/5xx with an HTML body), ``slow`` (delay every answer). ``requests`` and ``request_log`` count what was received.
    ``bearer_tokens``: the OAuth2 access tokens to accept (a collection, or a callable saying yes/no).
    ``time_off_numbers_as_strings``: send time-off ids and amounts as strings, as BambooHR's docs
    samples show, instead of the spec's numbers.
    """

    def __init__(
        self,
        api_key: str | None = None,
        employees: int = 50,
        host: str = "127.0.0.1",
        port: int = 0,
        seed: int = 1,
        company: str = "acme",
        bearer_tokens: BearerCheck | Collection[str] | None = None,
        *,
        record: bool = False,
        error_headers: tuple[str, ...] = DEFAULT_ERROR_HEADERS,
        time_off_numbers_as_strings: bool = False,
        employee_limit: int | None = None,
        webhook_insecure_urls: bool = False,
        webhook_backoff_scale: float = 1.0,
    ) -> None:
        if employees < 0:
            raise ValueError("employees must not be negative")
        if not company or "/" in company:
            raise ValueError("company must be a plain subdomain name")
        self.api_key = api_key or secrets.token_hex(20)  # BambooHR keys: 160 bits in hex
        self.host = host
        self._requested_port = port
        self.company: Company = seed_company(company, employees, seed)
        self.app = SandboxApp(
            self.company,
            api_key=self.api_key,
            bearer_tokens=bearer_tokens,
            error_headers=error_headers,
            time_off_numbers_as_strings=time_off_numbers_as_strings,
            employee_limit=employee_limit,
            record=record,
            webhook_insecure_urls=webhook_insecure_urls,
            webhook_backoff_scale=webhook_backoff_scale,
        )
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def _bind(self) -> _Server:
        handler = type("Handler", (_Handler,), {"app": self.app})
        self._server = _Server((self.host, self._requested_port), handler)
        return self._server

    def start(self) -> BambooHRSandbox:
        if self._server is not None:
            return self
        server = self._bind()
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, name="bamboohr-sandbox", daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in the calling thread until ``stop()`` (from another thread) or KeyboardInterrupt."""
        server = self._server or self._bind()
        try:
            server.serve_forever(poll_interval=0.2)
        finally:
            server.server_close()

    def stop(self) -> None:
        self.app.webhooks.stop()
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> BambooHRSandbox:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- where it listens --------------------------------------------------------------------
    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the sandbox is not started")
        return int(self._server.server_address[1])

    @property
    def root_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def url(self) -> str:
        """The API root in BambooHR's current form: ``http://HOST:PORT/api/v1/``."""
        return f"{self.root_url}/api/v1/"

    @property
    def gateway_url(self) -> str:
        """The legacy form: ``http://HOST:PORT/api/gateway.php/{company}/v1/``."""
        return f"{self.root_url}/api/gateway.php/{self.company.name}/v1/"

    # --- faults and counters -----------------------------------------------------------------
    def throttle(
        self, retry_after: float = 2.0, count: int | None = None, *, http_date: bool = False, status: int = 429
    ) -> None:
        """Answer 429 + Retry-After (``status=503``: 503 + Retry-After, BambooHR's throttle before
        16 September 2026): to the next ``count`` requests, or (``count=None``) to every request for
        ``retry_after`` seconds, each told the whole seconds left."""
        self.app.faults.throttle(retry_after, count, http_date=http_date, status=status)

    def hit_employee_limit(self, count: int | None = None) -> None:
        """Answer add-employee with 429 "Limit Exceeded" and no Retry-After (the account's employee
        limit is reached): the next ``count`` times, or until cleared. Other endpoints answer as usual."""
        self.app.faults.employee_limit(count)

    def fail(self, status: int = 500, count: int | None = None) -> None:
        """Answer ``status`` (with an HTML body, as gateways do) to the next ``count`` requests (None: until cleared)."""
        self.app.faults.fail(status, count)

    def slow(self, seconds: float) -> None:
        """Wait ``seconds`` before answering every request (0 to stop)."""
        self.app.faults.slow(seconds)

    def clear_faults(self) -> None:
        self.app.faults.clear()

    @property
    def requests(self) -> int:
        """API requests received (faulted and refused ones included; the control API excluded)."""
        return self.app.traffic.total

    @property
    def request_log(self) -> list[Logged]:
        return self.app.traffic.logged()

    @property
    def exchanges(self) -> list[Exchange]:
        return self.app.traffic.recorded()

    def stats(self) -> dict[str, Any]:
        return self.app.traffic.stats()

    def reset_stats(self) -> None:
        self.app.traffic.reset()
