"""``speech-qa serve``: the web page and the JSON API, as a subcommand of the ``speech-qa`` CLI.

``ui.cli`` imports this module to register the command. Gradio, uvicorn and Ray are imported
only inside the handler, so ``speech-qa ask`` never pays for them; only ``ui/`` imports them.

Order matters and is deliberate: the malloc arena limit first (before any thread exists),
then the port (a busy ``--port`` fails in a moment, before the model loads), then the model
and the index, then the server.
"""

from __future__ import annotations

import argparse
import logging
import signal
from pathlib import Path
from typing import TextIO

from qa import QA, default_engine
from qa.live import LiveIndex
from ui.access import Access
from ui.cli import register
from ui.process_setup import bind_socket, check_port_free, limit_malloc_arenas

DEFAULT_HOST = "127.0.0.1"
"""Loopback: the page is private to this machine unless ``--host 0.0.0.0`` opens it up."""
DEFAULT_PORT = 7860

CLUSTER_INSTALL_HINT = ("--replicas needs Ray Serve, which is not installed: "
                        "pip install 'speech-qa[cluster]' (or pip install 'ray[serve]')")


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError("must be from 1 to 65535")
    return number


def _replicas(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 64:
        raise argparse.ArgumentTypeError("must be from 1 to 64")
    return number


def _serve_logs() -> None:
    """One access line per request, one line per refused request, one per write and per
    new version served, through ``logging``."""
    for name in ("uvicorn.access", "ui", "qa.live"):
        logging.getLogger(name).setLevel(logging.INFO)


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """Bind the port, load and warm the engine, then serve until interrupted."""
    limit_malloc_arenas()
    if args.replicas is None and args.ray_address:
        raise ValueError("--ray-address needs --replicas N (the engine replicas to run on the cluster)")
    access = Access.configured(args.admin_token_file)  # a bad token is one line, before the model
    if args.replicas is not None:
        return _serve_on_ray(args, out, access)
    sock = bind_socket(args.host, args.port)  # raises PortInUseError (one line, exit 2)
    live = LiveIndex.open(args.index) if args.index else None
    engine = live.engine if live is not None else default_engine()
    out.write("speech-qa: loading the model and the index...\n")
    out.flush()
    signal.signal(signal.SIGTERM, _stop)
    _serve_logs()
    _say_who_may_write(access, live is not None)
    from ui.server import serve  # gradio and uvicorn are heavy: only this command needs them

    serve(engine, args.host, args.port, block=True, sock=sock, live=live, access=access)
    return 0


def _say_who_may_write(access: Access, writable: bool) -> None:
    """One line at start saying whether ``/api/documents`` accepts writes (never the token)."""
    log = logging.getLogger("ui.cli_serve")
    if not writable:
        log.info("documents are read-only (serve --index DIR to change a collection over HTTP)")
    elif access.writes_enabled:
        log.info("writes to /api/documents need the admin token; reads %s",
                 "need the read or admin token" if access.read else "are open")
    else:
        log.info("writes to /api/documents are disabled (set SPEECH_QA_ADMIN_TOKEN or "
                 "--admin-token-file to enable them)")


def _serve_on_ray(args: argparse.Namespace, out: TextIO, access: Access) -> int:
    """The same app on Ray Serve: N engine replicas behind one ingress."""
    try:
        import ray.serve  # noqa: F401
    except ModuleNotFoundError:
        raise ValueError(CLUSTER_INSTALL_HINT) from None
    check_port_free(args.host, args.port)
    if args.index is not None:
        QA.load(args.index)  # validate here: a bad index is one line now, not a failed replica later
    out.write(f"speech-qa: starting {args.replicas} replica(s) on Ray Serve...\n")
    out.flush()
    signal.signal(signal.SIGTERM, _stop)
    _serve_logs()
    from ui.cluster import serve_on_ray

    _say_who_may_write(access, args.index is not None)
    serve_on_ray(args.replicas, host=args.host, port=args.port, index=args.index,
                 address=args.ray_address, block=True, access=access)
    return 0


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (systemd, docker, kill) stops the server like Ctrl-C: uvicorn finishes the
    requests in flight and exit handlers run, so the private upload folder is removed."""
    raise KeyboardInterrupt


def add_serve_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve [--host HOST] [--port PORT] [--index DIR] [--replicas N [--ray-address A]]``."""
    serve = commands.add_parser("serve", help="serve the web page and the JSON API")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"interface to bind (default {DEFAULT_HOST}: this machine only)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    serve.add_argument("--index", type=Path, help="index directory (default: the bundled speech)")
    serve.add_argument("--admin-token-file", type=Path, default=None, metavar="PATH",
                       help="file holding the token that POST/DELETE /api/documents need "
                            "(default: $SPEECH_QA_ADMIN_TOKEN; without either, writes are refused)")
    serve.add_argument("--replicas", type=_replicas, default=None,
                       help="run the engine as N Ray Serve replicas (needs speech-qa[cluster])")
    serve.add_argument("--ray-address", default=None, metavar="ADDRESS",
                       help="join this Ray cluster (e.g. ray://head:10001 or head:6379); "
                            "default: start a local Ray")
    serve.set_defaults(handler=_cmd_serve)


register(add_serve_command)
