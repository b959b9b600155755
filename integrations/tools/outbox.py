"""The audit trail's way in while the hub's own database is unreachable: a local append-only journal.

A tool call that cannot be recorded (or completed) because the database is down is answered
``unavailable`` at once, and what its ToolCall row would have said is appended, as one JSON line, to a
journal file of this process (``DATA_DIR/outbox/``), flushed and fsynced before the answer goes out. The
journals are replayed into the database once it answers again: by the next call any process of this
machine records (at most one directory scan a second), and by the beat clean-up. Replaying is safe to
repeat (a row already there is not written twice), and two processes never replay one journal at once.

Entries: ``{"kind": "record", "fields": {...}}`` (a whole row; a caller whose agent token could not be
looked up is kept as the token's SHA-256, resolved at replay) and ``{"kind": "complete", "call_id",
"changes": {...}}`` (how a recorded call ended).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction

from integrations.tools.models import AgentToken, ToolCall

log = logging.getLogger(__name__)

_SCAN_EVERY = 1.0  # seconds: how often a busy process looks for journals to replay
_lock = threading.Lock()
_state = {"next_scan": 0.0}


def folder() -> Path:
    return Path(settings.TOOLS_OUTBOX_DIR)


def _own_path() -> Path:
    return folder() / f"tool-calls-{socket.gethostname()}-{os.getpid()}.jsonl"


@contextlib.contextmanager
def _locked_for_append(path: Path) -> Iterator[Any]:
    """``path`` opened and locked; reopened if a replayer moved it away while this process waited."""
    while True:
        handle = open(path, "a")  # noqa: SIM115 - closed below
        try:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                current = os.stat(path).st_ino == os.fstat(handle.fileno()).st_ino
            except FileNotFoundError:
                current = False
            if not current:
                continue  # a replayer took this file away while we waited: append to a fresh one
            yield handle
            return
        finally:
            handle.close()


def _append(entry: dict[str, Any]) -> None:
    path = _own_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    line = json.dumps(entry, separators=(",", ":"), default=str) + "\n"
    with _locked_for_append(path) as handle:
        handle.write(line)
        handle.flush()
        os.fsync(handle.fileno())
    _state["next_scan"] = 0.0


def record(fields: dict[str, Any]) -> None:
    """A call the database could not take: its whole row, for later."""
    _append({"kind": "record", "fields": fields})


def complete(call_id: int, changes: dict[str, Any]) -> None:
    """How a recorded call ended, when its row could not be updated."""
    _append({"kind": "complete", "call_id": call_id, "changes": changes})


def pending() -> list[Path]:
    try:
        return sorted(p for p in folder().iterdir() if p.suffix == ".jsonl" or p.name.endswith(".replaying"))
    except FileNotFoundError:
        return []


def replay_soon() -> int:
    """Replay waiting journals, at most once every ``_SCAN_EVERY`` s per process (cheap on the hot path)."""
    now = time.monotonic()
    if now < _state["next_scan"]:
        return 0
    _state["next_scan"] = now + _SCAN_EVERY
    if not pending():
        return 0
    return replay()


def _when(value: Any) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if isinstance(value, str) and value else None


def _apply(entry: dict[str, Any]) -> None:
    if entry.get("kind") == "complete":
        changes = dict(entry["changes"])
        if "finished_at" in changes:
            changes["finished_at"] = _when(changes["finished_at"])
        ToolCall.objects.filter(pk=entry["call_id"]).update(**changes)
        return
    fields = dict(entry["fields"])
    token_hash = fields.pop("token_hash", None)
    for name in ("created_at", "finished_at"):
        fields[name] = _when(fields.get(name))
    if token_hash:  # the caller's token could not be looked up when it called
        token = AgentToken.objects.filter(token_hash=token_hash).first()
        fields["token_id"] = token.pk if token is not None else None
        fields["actor"] = f"token:{token.name}#{token.pk}" if token is not None else "token:unknown"
    elif fields.get("token_id") and not AgentToken.objects.filter(pk=fields["token_id"]).exists():
        fields["token_id"] = None  # deleted since
    if fields.get("user_id") and not get_user_model().objects.filter(pk=fields["user_id"]).exists():
        fields["user_id"] = None
    if ToolCall.objects.filter(created_at=fields["created_at"], actor=fields["actor"], tool=fields["tool"]).exists():
        return  # replayed before (a replay interrupted after its commit)
    ToolCall.objects.create(**fields)


def replay() -> int:
    """Write every waiting entry of this machine's journals; returns how many. Raises DatabaseError when
    the database is still down (the journals stay)."""
    done = 0
    with _lock:
        for path in pending():
            work = path
            if path.suffix == ".jsonl":
                work = path.with_name(f"{path.name}.{os.getpid()}.replaying")
                try:
                    with open(path, "r+") as handle:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                        os.rename(path, work)  # writers waiting on the lock then start a new file
                except (BlockingIOError, FileNotFoundError):
                    continue
            try:
                with open(work) as handle:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    entries = [json.loads(line) for line in handle if line.strip()]
                    with transaction.atomic():
                        for entry in entries:
                            _apply(entry)
                    os.unlink(work)
                    done += len(entries)
            except (BlockingIOError, FileNotFoundError):
                continue
    if done:
        log.info("tool call outbox: %d entries written to the database", done)
    return done
