"""``speech-qa index / add / remove / list``: build and keep up a collection of your own files.

Exit statuses (documented in the README, relied on by scripts):

- 0: done, every file indexed (duplicates of indexed text are named but count as done);
- 2: nothing was changed (a missing path, nothing readable, a bad index folder, an
  unknown name to remove, ``--strict`` and a bad file, ...): one line on stderr;
- 3 (``EXIT_PARTIAL``): the index was written, but some files could not be read or are
  of an unsupported type; each is named on stderr with its reason.

Imported by ``ui.cli``, which calls the adder registered below.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TextIO

from qa import QA, DocumentInfo, UpdateReport
from ui.cli import register

EXIT_PARTIAL = 3


def _summary(report: UpdateReport | None) -> int:
    """Name every skipped file on stderr (one line each); the exit status it calls for."""
    if report is None:
        return 0
    for item in report.skipped:
        print(f"speech-qa: skipped {item.path}: {item.reason} ({item.detail})", file=sys.stderr)
    return EXIT_PARTIAL if report.partial else 0


def _totals(documents: tuple[DocumentInfo, ...]) -> str:
    passages = sum(d.passages for d in documents)
    sentences = sum(d.sentences for d in documents)
    return f"{len(documents)} document(s), {passages} passages, {sentences} sentences"


def _cmd_index(args: argparse.Namespace, out: TextIO) -> int:
    if args.ray_address or args.workers:
        from ui.cluster_index import index_on_ray  # Ray is optional and heavy: only this path needs it

        engine = index_on_ray(args.paths, args.index, args.ray_address, args.workers,
                              strict=args.strict, replace=args.replace)
    else:
        engine = QA.from_paths(args.paths, index_dir=args.index, show_progress=True, strict=args.strict,
                               replace=args.replace)
    out.write(f"Indexed {_totals(engine.documents)} -> {Path(args.index).absolute()}\n")
    return _summary(engine.last_update)


def _cmd_add(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.load(args.index, lazy=True)
    report = engine.add(args.paths, strict=args.strict, show_progress=True)
    new = [source for source in report.added if source not in report.replaced]
    parts = [f"Added {len(new)} document(s)"]
    if report.replaced:
        parts.append(f"replaced {len(report.replaced)} ({', '.join(report.replaced)})")
    out.write(f"{', '.join(parts)}; the index now holds {_totals(engine.documents)} -> "
              f"{Path(args.index).absolute()}\n")
    return _summary(report)


def _cmd_remove(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.load(args.index, lazy=True)
    report = engine.remove(args.sources, show_progress=True)
    out.write(f"Removed {len(report.removed)} document(s); the index now holds "
              f"{_totals(engine.documents)} -> {Path(args.index).absolute()}\n")
    return 0


def _size(size: int) -> str:
    for unit in ("B", "KB", "MB"):
        if size < 1000 or unit == "MB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1000  # type: ignore[assignment]
    return f"{size} B"  # unreachable


def _cmd_list(args: argparse.Namespace, out: TextIO) -> int:
    engine = QA.load(args.index, lazy=True)
    documents = engine.documents
    if args.json:
        out.write(json.dumps([d.to_dict() for d in documents], ensure_ascii=False, indent=2) + "\n")
        return 0
    rows = [("source", "passages", "sentences", "size", "added (UTC)")]
    rows += [(d.source, str(d.passages), str(d.sentences), _size(d.size), d.added_at.replace("T", " ")
              .rstrip("Z")) for d in documents]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        numbers = [cell.rjust(width) for cell, width in zip(row[1:4], widths[1:4], strict=True)]
        cells = [row[0].ljust(widths[0]), *numbers]
        out.write("  ".join([*cells, row[4]]).rstrip() + "\n")
    out.write(f"{_totals(documents)}\n")
    return 0


def add_index_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``index``, ``add``, ``remove`` and ``list`` to the CLI."""
    strict_help = "stop at the first file that cannot be read (default: skip it, name it, exit 3)"
    index = commands.add_parser("index", help="index files and folders into a new index")
    index.add_argument("paths", nargs="+", type=Path, help="files or folders to index (folders recursively)")
    index.add_argument("--index", type=Path, required=True, help="directory to write the index to")
    index.add_argument("--replace", action="store_true",
                       help="replace the index already in that directory (default: refuse)")
    index.add_argument("--strict", action="store_true", help=strict_help)
    from ui.cluster_index import add_ray_options

    add_ray_options(index)
    index.set_defaults(handler=_cmd_index)

    add = commands.add_parser("add", help="add files and folders to an existing index")
    add.add_argument("paths", nargs="+", type=Path, help="files or folders to add (folders recursively)")
    add.add_argument("--index", type=Path, required=True, help="the index directory")
    add.add_argument("--strict", action="store_true", help=strict_help)
    add.set_defaults(handler=_cmd_add)

    remove = commands.add_parser("remove", help="remove documents from an index, by name")
    remove.add_argument("sources", nargs="+", help="document names, as 'speech-qa list' shows them")
    remove.add_argument("--index", type=Path, required=True, help="the index directory")
    remove.set_defaults(handler=_cmd_remove)

    listing = commands.add_parser("list", help="list the documents of an index")
    listing.add_argument("--index", type=Path, required=True, help="the index directory")
    listing.add_argument("--json", action="store_true", help="print the list as JSON")
    listing.set_defaults(handler=_cmd_list)


register(add_index_commands)
