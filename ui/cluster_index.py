"""``speech-qa index PATH... --ray-address ADDRESS | --workers N``: embed on a Ray cluster.

Kept apart from ``ui.cli_index`` so that command stays a thin shell (and Ray stays optional):
this module adds the two options and runs the build with a ``RayEncoder``; the index logic
is the same ``QA.from_paths`` a local build runs.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from qa import QA

INSTALL_HINT = ("--ray-address/--workers need Ray, which is not installed: "
                "pip install 'speech-qa[cluster]' (or pip install 'ray[serve]')")


def _workers(value: str) -> int:
    number = int(value)
    if not 1 <= number <= 1024:
        raise argparse.ArgumentTypeError("must be from 1 to 1024")
    return number


def add_ray_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--ray-address`` and ``--workers`` to the ``index`` command."""
    parser.add_argument("--ray-address", default=None, metavar="ADDRESS",
                        help="embed on this Ray cluster (e.g. head:6379); needs speech-qa[cluster]")
    parser.add_argument("--workers", type=_workers, default=None, metavar="N",
                        help="Ray workers that embed (default with --ray-address: one per cluster CPU; "
                             "without it: a local Ray with N workers)")


def index_on_ray(paths: Sequence[Path], index_dir: Path, address: str | None, workers: int | None,
                 strict: bool = False, replace: bool = False) -> QA:
    """Build and save the index like ``QA.from_paths``, embedding with Ray workers.

    Raises:
        ValueError: Ray is not installed (one line saying how to install it).
    """
    try:
        import ray
    except ModuleNotFoundError:
        raise ValueError(INSTALL_HINT) from None
    from ui.cluster_encoder import cluster_encoder

    encoder, started = cluster_encoder(address, workers)
    try:
        return QA.from_paths(paths, index_dir=index_dir, encoder=encoder, show_progress=True,
                             strict=strict, replace=replace)
    finally:
        encoder.close()
        if started:
            ray.shutdown()
