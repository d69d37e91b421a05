"""``rapport collect serve``: the collector (tracking API and webhooks) on uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys

from jobs.config import Config


def cmd_collect_serve(args: argparse.Namespace) -> int:
    import uvicorn

    cfg = Config.load()  # fails now, with the setting named, rather than in every worker
    if not cfg.write_keys():
        print("rapport: warning: RAPPORT_COLLECTOR_WRITE_KEYS is empty: every tracking call is refused with 401 "
              "(webhooks and Snowplow still work)", file=sys.stderr)
    if args.sink == "memory":
        print("rapport: warning: --sink memory keeps nothing: for measuring the HTTP path only", file=sys.stderr)
    os.environ["RAPPORT_COLLECTOR_SINK"] = args.sink
    sock = socket.socket(socket.AF_INET6 if ":" in args.host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    host, port = sock.getsockname()[:2]
    print(f"rapport collector listening on http://{host}:{port} ({args.workers} worker(s), writing to "
          f"{cfg.collector_spool or cfg.landing_root})", flush=True)
    logging.getLogger("jobs.collector").setLevel(logging.INFO)
    # our own bound socket, so port 0 can be printed; handed over as a TCP socket (uvicorn's ``fd`` option would
    # take it for a Unix socket, and the connections would lose TCP_NODELAY: 40 ms per request)
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config("jobs.collector.app:create_app", factory=True, workers=args.workers, access_log=False,
                            log_level=args.log_level, timeout_graceful_shutdown=30, loop="uvloop", http="httptools",
                            lifespan="on")
    server = uvicorn.Server(config)
    if args.workers > 1:
        Multiprocess(config, target=server.run, sockets=[sock]).run()
    else:
        server.run(sockets=[sock])
    return 0


def add_parser(sub) -> None:
    c = sub.add_parser("collect", help="the collector: tracking libraries and webhooks post events to it")
    csub = c.add_subparsers(dest="collect_command", required=True, metavar="COLLECT_COMMAND")
    s = csub.add_parser("serve", help="serve the Segment-compatible tracking API, Snowplow and the webhooks",
                        description="Every accepted event is on disk (fsynced) before the request is answered. "
                                    "See docs/collector.md.")
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8088, help="0 picks a free port (printed)")
    s.add_argument("--workers", type=int, default=1, help="processes; each writes its own files")
    s.add_argument("--sink", choices=("disk", "memory"), default="disk",
                   help="memory keeps nothing: the benchmark's measure of what durability costs")
    s.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    s.set_defaults(func=cmd_collect_serve)
