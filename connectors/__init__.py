"""Plain-Python connectors: no Django import anywhere in this package (ruff enforces it)."""

from connectors.base import Connector, ConnectorStatus, CredentialField, TestResult
from connectors.errors import Category, ConfigError, ConnectorError
from connectors.registry import build, describe, kinds
from connectors.retry import RetryPolicy
from connectors.runtime import Runtime

__all__ = [
    "Category",
    "ConfigError",
    "Connector",
    "ConnectorError",
    "ConnectorStatus",
    "CredentialField",
    "RetryPolicy",
    "Runtime",
    "TestResult",
    "build",
    "describe",
    "kinds",
]
