"""How an ``Answer`` reads on a terminal: the answer, then each passage with its sentence marked.

Why its own module: the CLI's commands and the evaluation share it, and its marks are a
documented format (``[[...]]`` around the answering sentence when piped).
"""

from __future__ import annotations

from collections.abc import Sequence

from qa import Answer

_BOLD_YELLOW = "\033[1;33m"
_DIM = "\033[2m"
_RESET = "\033[0m"


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
        page = f"p. {passage.page}, " if passage.page is not None else ""
        header = (f"[{rank}] {passage.source}, {page}paragraph {passage.paragraph}, "
                  f"chars {passage.start}-{passage.end}, score {passage.score:.2f}")
        lines.append("")
        lines.append(f"{_DIM}{header}{_RESET}" if colour else header)
        spans = [(span.start, span.end) for span in passage.highlights]
        lines.append(mark_highlights(passage.text, spans, colour))
    return "\n".join(lines)
