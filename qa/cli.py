"""The ``speech-qa`` command line: a thin shell over the public API.

Every error the project raises on purpose (bad question, unreadable file, bad index)
becomes one line on stderr and exit code 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from index import IndexError_
from ingest import IngestError
from qa.engine import QA, default_engine
from qa.errors import QAError
from qa.types import Answer

EXIT_USAGE = 2

_BOLD_YELLOW = "\033[1;33m"
_DIM = "\033[2m"
_RESET = "\033[0m"


def _quiet_libraries() -> None:
    """Keep model-loading chatter (progress bars, warnings) off the user's terminal."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="speech-qa: %(message)s")


def mark_highlights(text: str, spans: Sequence[tuple[int, int]], colour: bool) -> str:
    """Mark spans in text: ANSI bold yellow on a terminal, ``[[...]]`` when piped."""
    out, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor:
            continue
        out.append(text[cursor:start])
        inner = text[start:end]
        out.append(f"{_BOLD_YELLOW}{inner}{_RESET}" if colour else f"[[{inner}]]")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def format_answer(answer: Answer, colour: bool) -> str:
    """Human-readable rendering of an ``Answer`` for the terminal."""
    lines = []
    if answer.answer is None:
        lines.append("No answer: the documents do not seem to answer this. Closest passages:")
    else:
        lines.append(f"Answer: {answer.answer}")
    lines.append(f"(confidence {answer.confidence:.2f})")
    for rank, passage in enumerate(answer.passages, 1):
        header = (f"[{rank}] {passage.source}, paragraph {passage.paragraph}, "
                  f"chars {passage.start}-{passage.end}, score {passage.score:.2f}")
        lines.append("")
        lines.append(f"{_DIM}{header}{_RESET}" if colour else header)
        spans = [(span.start, span.end) for span in passage.highlights]
        lines.append(mark_highlights(passage.text, spans, colour))
    return "\n".join(lines)


def _cmd_ask(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.load(args.index) if args.index else default_engine()
    answer = engine.ask(args.question, top_k=args.top_k)
    if args.json:
        out.write(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2) + "\n")
    else:
        colour = out.isatty() and not os.environ.get("NO_COLOR")
        out.write(format_answer(answer, colour) + "\n")
    return 0


def _cmd_index(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.from_paths(args.paths, index_dir=args.index, show_progress=True)
    counts = engine.index.manifest["counts"]
    out.write(f"Indexed {counts['documents']} document(s): {counts['passages']} passages, "
              f"{counts['sentences']} sentences -> {Path(args.index).absolute()}\n")
    return 0


Command = Callable[[argparse.Namespace, TextIO], int]
_EXTRA_COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = []  # type: ignore[type-arg]


def register(adder: Callable[[argparse._SubParsersAction], None]) -> None:  # type: ignore[type-arg]
    """Let other modules (server, evaluation) add subcommands without import cycles."""
    _EXTRA_COMMANDS.append(adder)


def _top_k(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 50:
        raise argparse.ArgumentTypeError("must be from 1 to 50")
    return number


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs)."""
    parser = argparse.ArgumentParser(
        prog="speech-qa",
        description="Ask questions about the Dalian speech (or your own documents).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question")
    ask.add_argument("question")
    ask.add_argument("--index", type=Path, help="index directory (default: the bundled speech)")
    ask.add_argument("--top-k", type=_top_k, default=3, help="passages to show (1-50, default 3)")
    ask.add_argument("--json", action="store_true", help="print the answer as JSON")
    ask.set_defaults(handler=_cmd_ask)
    index = commands.add_parser("index", help="index files and folders")
    index.add_argument("paths", nargs="+", type=Path)
    index.add_argument("--index", type=Path, required=True, help="directory to write the index to")
    index.set_defaults(handler=_cmd_index)
    _load_plugins()
    for adder in _EXTRA_COMMANDS:
        adder(commands)
    return parser


def _load_plugins() -> None:
    """Import modules that register subcommands (kept lazy: gradio is heavy)."""
    for module in ("qa.cli_serve", "qa.cli_eval"):
        try:
            __import__(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """Entry point of the ``speech-qa`` console script."""
    _quiet_libraries()
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    try:
        return handler(args, out or sys.stdout)
    except (QAError, IngestError, IndexError_, ValueError, OSError) as exc:
        print(f"speech-qa: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("speech-qa: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    # Run through the imported module, not this ``__main__`` copy, so subcommands that
    # plugins registered on ``qa.cli`` (serve, eval) are seen by ``python -m qa.cli`` too.
    from qa.cli import main as _main

    sys.exit(_main())
