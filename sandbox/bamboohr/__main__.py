"""``python -m sandbox.bamboohr --port 8765 --api-key KEY --employees 200``: the sandbox without Django
(fast to start; benchmarks use it). ``manage.py bamboohr_sandbox`` takes the same options."""

from __future__ import annotations

import argparse
import signal
import sys
import threading

from sandbox.bamboohr import BambooHRSandbox


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.bamboohr", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=None, help="default: a random key, printed")
    parser.add_argument("--employees", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--company", default="acme")
    args = parser.parse_args(argv)
    try:
        sandbox = BambooHRSandbox(
            api_key=args.api_key,
            employees=args.employees,
            host=args.host,
            port=args.port,
            seed=args.seed,
            company=args.company,
        ).start()
    except (OSError, ValueError) as exc:
        print(f"cannot start the sandbox: {exc}", file=sys.stderr)
        return 2
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    print(f"BambooHR sandbox ({args.employees} employees) at {sandbox.url}", flush=True)
    if args.api_key is None:
        print(f"API key: {sandbox.api_key}", flush=True)
    try:
        stopped.wait()
    finally:
        sandbox.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
