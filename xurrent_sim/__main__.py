"""`python -m xurrent_sim --port PORT --account NAME --token TOKEN ...` (see the package doc)."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from xurrent_sim.server import Simulator, make_server


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m xurrent_sim", description="A local simulator of the Xurrent REST API."
    )
    parser.add_argument("--port", type=int, required=True, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--account", required=True, help="the account id clients must send")
    parser.add_argument("--token", required=True, help="the bearer token clients must send")
    parser.add_argument("--webhook", action="append", default=[], metavar="URL", help="repeatable")
    parser.add_argument("--data", type=Path, help="JSON file: loaded at start, saved on change")
    parser.add_argument("--rate-limit", type=int, default=3600, help="calls per hour")
    parser.add_argument(
        "--burst-limit", type=int, default=0, help="calls per 2 seconds (default 0: off)"
    )
    parser.add_argument(
        "--webhook-key", type=Path, metavar="PEM", help="RSA private key: sign webhooks (RS256)"
    )
    parser.add_argument("--webhook-audience", default="xurrent-sim", help="the JWT's aud")
    parser.add_argument("--webhook-retries", type=int, default=4, help="attempts per delivery")
    parser.add_argument(
        "--webhook-backoff", type=float, default=0.5, help="first retry wait, doubled each time"
    )
    parser.add_argument("--first-id", type=int, default=1, help="the first request/note id")
    parser.add_argument("--quiet", action="store_true", help="do not log each HTTP call")
    args = parser.parse_args(argv)
    if args.rate_limit < 1:
        parser.error("--rate-limit must be at least 1")
    if args.burst_limit < 0:
        parser.error("--burst-limit cannot be negative")
    return args


def log(line: str) -> None:
    print(line, flush=True)


def make_simulator(args: argparse.Namespace, key: bytes | None) -> Simulator:
    return Simulator(
        account=args.account,
        token=args.token,
        webhooks=args.webhook,
        data_file=args.data,
        rate_limit=args.rate_limit,
        burst_limit=args.burst_limit,
        webhook_key=key,
        webhook_audience=args.webhook_audience,
        webhook_retries=args.webhook_retries,
        webhook_backoff=args.webhook_backoff,
        first_id=args.first_id,
        log=log,
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    key = args.webhook_key.read_bytes() if args.webhook_key else None
    if key:
        # Fail at start, not at the first webhook, when PyJWT is missing or the key is bad.
        import jwt

        try:
            jwt.encode({"check": True}, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError) as error:
            print(f"xurrent_sim: --webhook-key is not an RSA private key: {error}", file=sys.stderr)
            return 2
    try:
        sim = make_simulator(args, key)
    except (OSError, ValueError, KeyError) as error:
        print(f"xurrent_sim: cannot load {args.data}: {error!r}", file=sys.stderr)
        return 2
    if args.quiet:
        sim.http_log = False
    server = make_server(sim, args.host, args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    log(
        f"xurrent_sim listening on {sim.base_url}/v1 (account {args.account}, page {sim.base_url}/)"
    )
    try:
        server.serve_forever(poll_interval=0.1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
