"""An httpx transport whose every TCP connection goes through the target policy.

httpcore opens connections through a "network backend"; ours resolves the host itself, checks every
address it resolves to, and connects to a vetted address (TLS still checks the certificate against
the URL's host name, which httpcore passes to ``start_tls`` separately). Redirect hops and pooled
reconnects open connections through the same backend, so no packet ever goes to a refused address.

Works for httpx and for httpx2 (Authlib's client), whose transports share the httpcore layout; the
backend is swapped on the transport's pool because httpx 0.28 has no public argument for it yet
(encode/httpx pull request 3749).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import httpx

from connectors.errors import Category, ConnectorError
from connectors.policy import TargetPolicy


class CheckedBackend:
    """Delegates to httpcore's own sync backend after the policy has vetted the address."""

    def __init__(self, inner: Any, policy: TargetPolicy) -> None:
        self.inner = inner
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> Any:
        addresses = self.policy.resolve(host, port)
        failure: Exception | None = None
        for address in addresses:
            try:
                return self.inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except Exception as exc:  # httpcore's ConnectError / ConnectTimeout: try the next vetted address
                failure = exc
        assert failure is not None
        raise failure

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> Any:
        raise ConnectorError("unix sockets are refused by the hub's network policy", category=Category.PERMISSION)

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)


def checked_transport(policy: TargetPolicy, transport_class: type[Any] = httpx.HTTPTransport, **kwargs: Any) -> Any:
    """``transport_class(**kwargs)`` (httpx or httpx2 HTTPTransport) connecting only where ``policy`` allows."""
    transport = transport_class(**kwargs)
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        raise RuntimeError(f"{transport_class.__module__}.{transport_class.__name__} has an unknown layout")
    pool._network_backend = CheckedBackend(pool._network_backend, policy)
    return transport
