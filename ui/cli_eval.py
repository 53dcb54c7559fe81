"""``speech-qa eval FILE``: measure answer quality on a question file.

Why a subcommand: users who index their own documents need the same numbers as the
benchmark (sent@1, hit@k, MRR, abstention) on their own questions, with one command.
It accepts SQuAD JSON (each article indexed on its own; with several articles, each
article's questions are also asked of the others as off-topic) and the simple
``[{"question", "answer"}]`` format (asked of the bundled speech, or of ``--docs``).
Imported by ``ui.cli``, which calls the adder registered below.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from tqdm.auto import tqdm

from qa import QA, default_engine
from qa.evaluation import (
    MRR_DEPTH,
    TABLE_HEADER,
    Report,
    evaluate,
    load_eval_file,
    summarise,
    table_row,
    with_off_topic,
)
from ui import cli

EVAL_BATCH = 32
"""Questions per ``ask_many`` call: small enough for the bar to move, big enough to batch."""


def run_eval(path: Path, docs: list[Path] | None = None, off_topic: bool = True,
             show_progress: bool = False) -> Report:
    """Evaluate every set of ``path``; returns per-set and pooled metrics.

    Args:
        path: SQuAD JSON or the simple question list.
        docs: Documents to ask simple-format questions of (default: the bundled speech).
        off_topic: With several SQuAD articles, also ask each the others' questions.
        show_progress: One bar on stderr over every question (a SQuAD file takes minutes).

    Raises:
        EvalFormatError: The file is neither format.
        IngestError: A ``--docs`` path cannot be read.
    """
    sets = load_eval_file(path)
    if off_topic and len(sets) > 1:
        sets = with_off_topic(sets)
    report = Report()
    pooled = []
    total = sum(len(eval_set.questions) for eval_set in sets)
    with tqdm(total=total, unit="question", desc="eval", disable=not show_progress,
              dynamic_ncols=True, leave=True) as bar:
        for eval_set in sets:
            bar.set_postfix_str(f"indexing {eval_set.name}"[:40])
            if eval_set.documents is not None:
                engine = QA.from_documents(list(eval_set.documents))
            elif docs:
                engine = QA.from_paths(docs)
            else:
                engine = default_engine()
            bar.set_postfix_str(f"asking {eval_set.name}"[:40])
            questions = [q.question for q in eval_set.questions]
            answers = []
            for first in range(0, len(questions), EVAL_BATCH):
                batch = questions[first: first + EVAL_BATCH]
                answers += engine.ask_many(batch, top_k=MRR_DEPTH)
                bar.update(len(batch))
            results = evaluate(answers, eval_set.questions)
            report.per_set[eval_set.name] = summarise(results)
            pooled += results
    report.pooled = summarise(pooled)
    return report


def _cmd_eval(args: argparse.Namespace, out: TextIO) -> int:
    report = run_eval(args.file, args.docs, not args.no_off_topic, show_progress=True)
    if args.json:
        out.write(json.dumps(report.to_dict(), indent=2) + "\n")
        return 0
    lines = [TABLE_HEADER]
    lines += [table_row(name, metrics) for name, metrics in report.per_set.items()]
    if report.pooled is not None and len(report.per_set) > 1:
        lines.append(table_row("**pooled**", report.pooled))
    out.write("\n".join(lines) + "\n")
    return 0


def add_eval_command(commands: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the ``eval`` subcommand to the ``speech-qa`` parser."""
    parser = commands.add_parser(
        "eval", help="measure answer quality on a question file (SQuAD JSON or [{question, answer}])")
    parser.add_argument("file", type=Path, help="SQuAD JSON, or a JSON list of {question, answer}")
    parser.add_argument("--docs", type=Path, nargs="+",
                        help="documents for simple-format questions (default: the bundled speech)")
    parser.add_argument("--no-off-topic", action="store_true",
                        help="do not ask each SQuAD article the other articles' questions")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")
    parser.set_defaults(handler=_cmd_eval)


cli.register(add_eval_command)
