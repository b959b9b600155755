"""The small base every connector shares: identity, typed config, secret fields, lifecycle, test.

Rate limit, retry, metrics and the circuit breaker are not here: each family has ONE choke point
(``HttpConnector._request``, ``DatabaseConnector._execute``) that runs through ``Runtime.call``.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from connectors.errors import Category, ConnectorError
from connectors.policy import Target
from connectors.ratelimit import RateLimitConfig
from connectors.runtime import Runtime


class ConnectorStatus(StrEnum):
    INITIALIZED = "initialized"
    CONNECTING = "connecting"
    AUTHENTICATING = "authenticating"
    READY = "ready"
    DISCONNECTED = "disconnected"
    ERROR = "error"


class BaseConfig(BaseModel):
    """Non-secret configuration. Unknown keys are refused so typos surface as field errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rate_limit: RateLimitConfig = Field(default_factory=RateLimitConfig)  # type: ignore[arg-type]


@dataclass(frozen=True)
class CredentialField:
    name: str
    label: str
    secret: bool = True
    # The auth types that need this field; empty means the field is optional.
    required_for: tuple[str, ...] = ()
    help: str = ""


@dataclass
class TestResult:
    ok: bool
    latency_ms: float
    category: str | None = None
    message: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 2),
            "category": self.category,
            "message": self.message,
            "details": self.details,
        }

    @classmethod
    def failed(cls, exc: ConnectorError, started: float) -> TestResult:
        """The result of a test that ``exc`` ended; ``started`` is its ``time.perf_counter()`` start."""
        return cls(
            ok=False,
            latency_ms=(time.perf_counter() - started) * 1000,
            category=exc.category.value,
            message=exc.message,
            details={"retry_after": exc.retry_after} if exc.retry_after else {},
        )


ConfigT = TypeVar("ConfigT", bound=BaseConfig)


class Connector(ABC, Generic[ConfigT]):
    kind: ClassVar[str]
    label: ClassVar[str]
    family: ClassVar[str]  # "database" | "hris"
    config_class: ClassVar[type[BaseConfig]]
    credential_fields: ClassVar[tuple[CredentialField, ...]] = ()
    auth_types: ClassVar[tuple[str, ...]] = ("none",)

    def __init__(
        self,
        config: ConfigT,
        credentials: Mapping[str, str] | None = None,
        runtime: Runtime | None = None,
        *,
        auth_type: str | None = None,
    ) -> None:
        self.config = config
        self._credentials = dict(credentials or {})
        self.runtime = runtime or Runtime(key=f"{self.kind}:anonymous")
        self.auth_type = auth_type or self.auth_types[0]
        self.status = ConnectorStatus.INITIALIZED

    def __repr__(self) -> str:  # never shows credentials
        return f"<{type(self).__name__} key={self.runtime.key!r} status={self.status.value}>"

    # Lifecycle: initialize -> connect -> authenticate -> ready -> disconnect.
    def connect(self) -> None:
        self.status = ConnectorStatus.CONNECTING
        try:
            self._open()
            self.status = ConnectorStatus.AUTHENTICATING
            self._authenticate()
        except ConnectorError:
            self.status = ConnectorStatus.ERROR
            raise
        self.status = ConnectorStatus.READY
        if self.runtime.metrics is not None:
            self.runtime.metrics.mark_connected(self.runtime.key)

    def disconnect(self) -> None:
        try:
            self._close()
        finally:
            self.status = ConnectorStatus.DISCONNECTED

    def ensure_connected(self) -> None:
        if self.status != ConnectorStatus.READY:
            self.connect()

    def test_connection(self) -> TestResult:
        """Connect if needed and run the kind's cheapest real round trip. Never raises."""
        started = time.perf_counter()
        try:
            self.ensure_connected()
            details = self._probe() or {}
        except ConnectorError as exc:
            return TestResult.failed(exc, started)
        except Exception as exc:  # a bug or an unmapped driver error: typed, with no driver text
            return TestResult(
                ok=False,
                latency_ms=(time.perf_counter() - started) * 1000,
                category=Category.UNKNOWN.value,
                message=f"unexpected {type(exc).__name__}",
            )
        return TestResult(ok=True, latency_ms=(time.perf_counter() - started) * 1000, details=details)

    def credential(self, name: str) -> str:
        value = self._credentials.get(name)
        if not value:
            raise ConnectorError(f"credential {name!r} is not set", category=Category.CONFIG)
        return value

    @classmethod
    def targets(cls, config: Any) -> list[Target]:
        """Where ``config`` points (hosts, URLs, files), for the target policy to check at validation."""
        return []

    # Subclass hooks.
    @abstractmethod
    def _open(self) -> None: ...

    def _authenticate(self) -> None:
        """Prove the credentials work; the default relies on ``_open`` having done so."""

    @abstractmethod
    def _close(self) -> None: ...

    @abstractmethod
    def _probe(self) -> dict[str, Any] | None:
        """The health round trip (``SELECT 1``, a cheap API call)."""
