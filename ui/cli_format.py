"""How an ``Answer`` reads on a terminal: the answer, then each passage with its sentence marked.

Why its own module: the CLI's commands and the evaluation share it, and its marks are a
documented format (``[[...]]`` around the answering sentence when piped, and ``{{...}}``
around the answer phrase inside it).
"""

from __future__ import annotations

from collections.abc import Sequence

from qa import Answer

_BOLD_YELLOW = "\033[1;33m"
_DIM = "\033[2m"
_RESET = "\033[0m"
_PHRASE = "\033[1;4;33m"  # bold, underlined, yellow: the phrase inside the highlighted sentence


def mark_highlights(text: str, spans: Sequence[tuple[int, int]], colour: bool,
                    phrase: tuple[int, int] | None = None) -> str:
    """Mark spans in text: ANSI bold yellow on a terminal, ``[[...]]`` when piped.

    ``phrase`` (inside one of the spans) is emphasised within it: bold underlined on a
    terminal, ``{{...}}`` when piped (``[[In {{2001}}, through ...]]``).
    """
    out, cursor = [], 0
    for start, end in sorted(spans):
        if start < cursor:
            continue
        out.append(text[cursor:start])
        inner = text[start:end]
        if phrase is not None and start <= phrase[0] < phrase[1] <= end:
            a, b = phrase[0] - start, phrase[1] - start
            if colour:
                inner = f"{inner[:a]}{_PHRASE}{inner[a:b]}{_RESET}{_BOLD_YELLOW}{inner[b:]}"
            else:
                inner = f"{inner[:a]}{{{{{inner[a:b]}}}}}{inner[b:]}"
        out.append(f"{_BOLD_YELLOW}{inner}{_RESET}" if colour else f"[[{inner}]]")
        cursor = end
    out.append(text[cursor:])
    return "".join(out)


def format_answer(answer: Answer, colour: bool) -> str:
    """Human-readable rendering of an ``Answer`` for the terminal."""
    lines = []
    if answer.notice is not None:
        lines.append(answer.notice)
    elif answer.answer is None:
        lines.append("No answer: the documents do not seem to answer this. Closest passages:")
    else:
        lines.append(f"Answer: {answer.answer}")
        if answer.phrase is not None:
            lines.append(f"Phrase: {_PHRASE}{answer.phrase}{_RESET}" if colour
                         else f"Phrase: {{{{{answer.phrase}}}}}")
    lines.append(f"(confidence {answer.confidence:.2f})")
    for rank, passage in enumerate(answer.passages, 1):
        page = f"p. {passage.page}, " if passage.page is not None else ""
        header = (f"[{rank}] {passage.source}, {page}paragraph {passage.paragraph}, "
                  f"chars {passage.start}-{passage.end}, score {passage.score:.2f}")
        lines.append("")
        lines.append(f"{_DIM}{header}{_RESET}" if colour else header)
        spans = [(span.start, span.end) for span in passage.highlights]
        phrase = answer.phrase_span if rank == 1 else None
        lines.append(mark_highlights(passage.text, spans, colour,
                                     (phrase.start, phrase.end) if phrase else None))
    return "\n".join(lines)
