"""``speech-qa serve``: the web page, as a subcommand of the ``speech-qa`` CLI.

``ui.cli`` imports this module to register the command. Gradio is imported only inside
the handler, so ``speech-qa ask`` never pays for it; only ``ui/`` imports gradio itself.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import TextIO

from qa import QA, default_engine
from ui.cli import register

DEFAULT_HOST = "127.0.0.1"
"""Loopback: the page is private to this machine unless ``--host 0.0.0.0`` opens it up."""
DEFAULT_PORT = 7860


def _port(value: str) -> int:
    number = int(value)
    if not 0 < number < 65536:
        raise argparse.ArgumentTypeError("must be from 1 to 65535")
    return number


def _cmd_serve(args: argparse.Namespace, out: TextIO) -> int:
    """Load the engine, warm it (model and index), then serve until interrupted."""
    from ui.app import launch  # gradio is heavy: only this command needs it

    engine = QA.load(args.index) if args.index else default_engine()
    out.write("speech-qa: loading the model and the index...\n")
    out.flush()
    signal.signal(signal.SIGTERM, _stop)
    launch(engine, host=args.host, port=args.port, block=True)
    return 0


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (systemd, docker, kill) stops the server like Ctrl-C: Gradio closes cleanly
    and exit handlers run, so the private upload folder is removed."""
    raise KeyboardInterrupt


def add_serve_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``serve [--host HOST] [--port PORT] [--index DIR]`` to the CLI."""
    serve = commands.add_parser("serve", help="serve the web page")
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help=f"interface to bind (default {DEFAULT_HOST}: this machine only)")
    serve.add_argument("--port", type=_port, default=DEFAULT_PORT, help=f"TCP port (default {DEFAULT_PORT})")
    serve.add_argument("--index", type=Path, help="index directory (default: the bundled speech)")
    serve.set_defaults(handler=_cmd_serve)


register(add_serve_command)
