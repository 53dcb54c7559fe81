"""``speech-qa index``: build an index of your own files and folders.

Imported by ``ui.cli``, which calls the adder registered below.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from qa import QA
from ui.cli import register


def _cmd_index(args: argparse.Namespace, out: TextIO) -> int:
    if args.ray_address or args.workers:
        from ui.cluster_index import index_on_ray  # Ray is optional and heavy: only this path needs it

        engine = index_on_ray(args.paths, args.index, args.ray_address, args.workers)
    else:
        engine = QA.from_paths(args.paths, index_dir=args.index, show_progress=True)
    counts = engine.index.manifest["counts"]
    out.write(f"Indexed {counts['documents']} document(s): {counts['passages']} passages, "
              f"{counts['sentences']} sentences -> {Path(args.index).absolute()}\n")
    return 0


def add_index_commands(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``index PATH... --index DIR`` to the CLI."""
    index = commands.add_parser("index", help="index files and folders")
    index.add_argument("paths", nargs="+", type=Path, help="files or folders to index (folders recursively)")
    index.add_argument("--index", type=Path, required=True, help="directory to write the index to")
    from ui.cluster_index import add_ray_options

    add_ray_options(index)
    index.set_defaults(handler=_cmd_index)


register(add_index_commands)
