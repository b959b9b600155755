"""A BambooHR-compatible sandbox: a stateful HTTP server that follows BambooHR's published API.

``from sandbox.bamboohr import BambooHRSandbox``; see ``server.BambooHRSandbox`` for the knobs and
``app.SandboxApp`` for what each endpoint checks and answers.
"""

from sandbox.bamboohr.server import BambooHRSandbox

__all__ = ["BambooHRSandbox"]
