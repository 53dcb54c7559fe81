"""The ``speech-qa`` command line: a thin shell over the public API.

Every error the project raises on purpose (bad question, unreadable file, bad index)
becomes one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import codecs
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path
from typing import TextIO

from qa import MAX_TOP_K, QA, SpeechQAError, default_engine
from ui.cli_format import format_answer

EXIT_USAGE = 2


def _quiet_libraries() -> None:
    """Keep model-loading chatter (progress bars, warnings) off the user's terminal."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="speech-qa: %(message)s")


def _cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.load(args.index) if args.index else default_engine()
    answer = engine.ask(args.question, top_k=args.top_k, sources=args.source)
    if args.json:
        out.write(json.dumps(answer.to_dict(), ensure_ascii=not _speaks_unicode(out), indent=2) + "\n")
    else:
        colour = out.isatty() and not os.environ.get("NO_COLOR")
        out.write(format_answer(answer, colour) + "\n")
    return 0


Command = Callable[[argparse.Namespace, TextIO], int]
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def register(adder: Callable[[argparse._SubParsersAction], None]) -> None:  # type: ignore[type-arg]
    """Let other modules (server, evaluation) add subcommands without import cycles."""
    _EXTRA_COMMANDS.append(adder)


def top_k_option(value: str) -> int:
    """``--top-k``: a whole number in the one range every surface uses (``qa.MAX_TOP_K``).

    Why an ``ArgumentTypeError`` with the range: argparse would otherwise say
    "invalid _top_k value", naming a Python function instead of the option.
    """
    try:
        number = int(value)
    except ValueError:
        number = 0
    if not 1 <= number <= MAX_TOP_K:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {MAX_TOP_K}, got {value!r}")
    return number


def _version() -> str:
    try:
        return metadata.version("speech-qa")
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _tolerant_streams(*streams: TextIO) -> None:
    """Print what the terminal can show instead of failing on the first curly quote.

    Why: with a non-UTF-8 terminal (``PYTHONIOENCODING=ascii``, a C locale) the speech's
    typographic quotes made every answer fail with an encoding error. Characters the
    stream cannot encode become ``?``; JSON output escapes them instead (lossless).
    """
    for stream in streams:
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and not _speaks_unicode(stream):
            reconfigure(errors="replace")


def _speaks_unicode(stream: TextIO) -> bool:
    encoding = getattr(stream, "encoding", None) or "utf-8"
    try:
        return codecs.lookup(encoding).name.startswith("utf")
    except LookupError:
        return False


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="speech-qa",
        description="Ask questions about the Dalian speech (or your own documents).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question")
    ask.add_argument("question", help='the question, in quotes (e.g. "When was the award given?")')
    ask.add_argument("--index", type=Path, help="index directory (default: the bundled speech)")
    ask.add_argument("--top-k", type=top_k_option, default=3,
                     help=f"passages to show (1-{MAX_TOP_K}, default 3)")
    ask.add_argument("--source", action="append", default=None, metavar="NAME",
                     help="ask only this document (a name 'speech-qa list' shows); repeatable")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(handler=_cmd_ask)
    _load_plugins()
    for adder in _EXTRA_COMMANDS:
        adder(commands)
    return parser


def _load_plugins() -> None:
    """Import modules that register subcommands (kept lazy: gradio is heavy)."""
    for module in ("ui.cli_index", "ui.cli_serve", "ui.cli_eval"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``speech-qa`` console script."""
    _quiet_libraries()
    _tolerant_streams(sys.stdout, sys.stderr)
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args, out or sys.stdout)
    except (SpeechQAError, ValueError, OSError) as exc:
        print(f"speech-qa: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("speech-qa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module, not this ``__main__`` copy, so subcommands that
    # plugins registered on ``ui.cli`` (serve, eval) are seen by ``python -m ui.cli`` too.
    from ui.cli import main as _main

    sys.exit(_main())
