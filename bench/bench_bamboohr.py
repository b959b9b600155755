"""How much the connector costs over a bare HTTP call: list 10,000 employees through
BambooHRConnector and through raw httpx against the same sandbox endpoint, and print the ratio.

    .venv/bin/python bench/bench_bamboohr.py [--employees 10000] [--rounds 7]

The sandbox runs in its own process (``python -m sandbox.bamboohr``) so that server work does not
share the benchmark's interpreter lock. Both sides use one keep-alive client, send the same request
and parse the JSON; the connector adds its choke point (runtime, limiter, retry, metrics), error
mapping and the cleaning of every record (ids as strings, "0000-00-00" -> None). Target: <= 1.2x.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.http.bamboohr import DEFAULT_EMPLOYEE_FIELDS, BambooHRConfig, BambooHRConnector  # noqa: E402
from connectors.metrics import MemoryMetrics  # noqa: E402
from connectors.policy import TargetPolicy  # noqa: E402
from connectors.ratelimit import MemoryRateLimiter, RateLimitConfig  # noqa: E402
from connectors.runtime import Runtime  # noqa: E402

TARGET = 1.2


def start_sandbox(employees: int, api_key: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox.bamboohr", "--port", "0", "--api-key", api_key, "--employees", str(employees)],
        cwd=REPO,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"at (http://\S+/api/v1/)", line)
    if not match:
        process.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return process, match.group(1)


def timed(fn: Callable[[], Any], rounds: int) -> tuple[float, Any]:
    times, result = [], None
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--employees", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()

    api_key = secrets.token_hex(20)
    process, url = start_sandbox(args.employees, api_key)
    try:
        # A runtime like the hub's (limiter, metrics), with a limit that does not throttle the benchmark.
        runtime = Runtime(
            key="bench-bamboohr",
            limiter=MemoryRateLimiter(RateLimitConfig(requests=10_000, per_seconds=1)),
            metrics=MemoryMetrics(),
            policy=TargetPolicy(allow_loopback=True),  # the sandbox runs on this machine
        )
        config = BambooHRConfig(subdomain="acme", base_url=url, allow_insecure_loopback=True)
        connector = BambooHRConnector(config, {"api_key": api_key}, runtime)
        connector.connect()
        raw = httpx.Client(base_url=url, auth=(api_key, "x"), headers={"Accept": "application/json"}, timeout=60)
        body = {"fields": list(DEFAULT_EMPLOYEE_FIELDS)}

        def raw_report() -> Any:
            return raw.post("reports/custom", params={"format": "json"}, json=body).json()["employees"]

        def raw_directory() -> Any:
            return raw.get("employees/directory").json()["employees"]

        cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            ("list_employees() [POST reports/custom]", connector.list_employees, raw_report),
            (
                "list_employees(unified=True)",
                lambda: connector.list_employees(unified=True),
                raw_report,
            ),
            ("get_directory() [GET employees/directory]", connector.get_directory, raw_directory),
        ]
        for _name, ours, theirs in cases:  # warm up: connections, caches, the sandbox's first pass
            ours(), theirs()

        print(f"{args.employees:,} employees, best of {args.rounds} interleaved rounds, sandbox at {url}")
        print(f"{'operation':44} {'connector':>10} {'raw httpx':>10} {'ratio':>7}")
        worst = 0.0
        for name, ours, theirs in cases:
            # Interleave the two sides so that machine noise hits both alike.
            ours_times, raw_times, count = [], [], 0
            for _ in range(args.rounds):
                t_ours, result = timed(ours, 1)
                t_raw, raw_result = timed(theirs, 1)
                ours_times.append(t_ours)
                raw_times.append(t_raw)
                count = len(result if isinstance(result, list) else result["employees"])
                assert count == len(raw_result), (count, len(raw_result))
            # Best of N (as timeit does): the noise of a busy machine only ever adds time.
            ours_best, raw_best = min(ours_times), min(raw_times)
            ratio = ours_best / raw_best
            median_ratio = statistics.median(ours_times) / statistics.median(raw_times)
            if "unified" not in name:
                worst = max(worst, ratio)
            print(
                f"{name:44} {ours_best * 1000:8.1f}ms {raw_best * 1000:8.1f}ms {ratio:6.2f}x"
                f"   (median ratio {median_ratio:.2f}x, {count:,} rows)"
            )
        verdict = "within" if worst <= TARGET else "ABOVE"
        print(f"worst plain-listing ratio {worst:.2f}x: {verdict} the {TARGET}x target (unified shapes are extra work)")
        connector.disconnect()
        raw.close()
        return 0
    finally:
        process.terminate()
        process.wait(timeout=10)


if __name__ == "__main__":
    sys.exit(main())
