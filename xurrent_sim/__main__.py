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
    return args


def log(line: str) -> None:
    print(line, flush=True)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    key = args.webhook_key.read_bytes() if args.webhook_key else None
    if key:
        import jwt  # noqa: F401 - fail at start, not at the first webhook, if PyJWT is missing
    sim = Simulator(
        account=args.account,
        token=args.token,
        webhooks=args.webhook,
        data_file=args.data,
        rate_limit=args.rate_limit,
        webhook_key=key,
        webhook_audience=args.webhook_audience,
        webhook_retries=args.webhook_retries,
        webhook_backoff=args.webhook_backoff,
        first_id=args.first_id,
        log=log,
    )
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
