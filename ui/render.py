"""Drawing an ``Answer.to_dict()`` into the page's widgets: the answer card and the passages.

Why its own module: presentation rules (what is highlighted, what a passage header says)
are tested without building a page, and the page module stays about layout and events.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

MAX_PASSAGES = 10
"""Most passages the page shows (the slider's maximum); the widgets are created up front."""

ANSWER_LABEL = "answer"
"""HighlightedText category of the best answering sentence."""
ALSO_LABEL = "also relevant"
"""Category of a passage's other answering sentences."""

COLOURS = {ANSWER_LABEL: "#facc15", ALSO_LABEL: "#fde68a"}
"""Gradio draws these at half opacity: a clear yellow for the answer, a faint amber for the rest."""

def _highlight_value(passage: dict[str, Any], answer: str | None) -> dict[str, Any]:
    """A ``HighlightedText`` value marking the passage's answering sentences in place.

    The best answering sentence (the answer itself) gets the strong colour, the passage's
    other highlights a pale one. With no answer nothing is marked: the closest passages
    are context, and a yellow sentence would read as an answer that is not there. Spans
    are clipped and de-overlapped because Gradio slices the text between consecutive
    entities and would repeat text for overlapping spans.
    """
    text: str = passage["text"]
    entities: list[dict[str, Any]] = []
    if answer is None:
        return {"text": text, "entities": entities}
    cursor = 0
    spans = sorted(passage.get("highlights", []), key=lambda span: (span["start"], span["end"]))
    for span in spans:
        start, end = max(span["start"], cursor), min(span["end"], len(text))
        if start >= end:
            continue
        is_answer = text[start:end].strip() == answer.strip()
        entities.append({"entity": ANSWER_LABEL if is_answer else ALSO_LABEL, "start": start, "end": end})
        cursor = end
    return {"text": text, "entities": entities}


def _answer_html(result: dict[str, Any], corpus: str, plural: bool) -> str:
    """The prominent box above the passages: the answer sentence, or a plain 'no answer'."""
    if result["answer"] is None:
        closest = "The closest passages are below." if result["passages"] else ""
        return (
            '<div class="answer-box no-answer" id="answer-box">'
            f'<p class="answer-kicker">No answer</p>'
            f'<p class="answer-text">{html.escape(corpus).capitalize()} '
            f"{'do' if plural else 'does'} not seem to answer this question. {closest}</p>"
            "</div>"
        )
    best = result["passages"][0] if result["passages"] else None
    where = f" · {html.escape(best['source'])}, paragraph {best['paragraph']}" if best else ""
    return (
        '<div class="answer-box" id="answer-box">'
        '<p class="answer-kicker">Answer</p>'
        f'<p class="answer-text">{html.escape(result["answer"])}</p>'
        f'<p class="answer-meta">confidence {result["confidence"]:.2f}{where}</p>'
        "</div>"
    )


def _passage_head(rank: int, passage: dict[str, Any], answered: bool) -> str:
    """One line over a passage: its rank, document, paragraph and score."""
    kind = "Passage" if answered else "Closest passage"
    return (
        f'<p class="passage-head"><b>{kind} {rank}</b> · {html.escape(passage["source"])}, '
        f'paragraph {passage["paragraph"]} · score {passage["score"]:.2f}</p>'
    )


def render_answer(result: dict[str, Any] | None, corpus: str = "the speech",
                  plural: bool = False) -> list[Any]:
    """Turn ``Answer.to_dict()`` into updates: the answer box, then each passage's widgets.

    Args:
        result: The answer, as the ``/ask`` API returns it.
        corpus: What was searched, for "... does not seem to answer" ("the collection").
        plural: ``corpus`` names several things ("your documents and the speech").

    Returns:
        ``[answer_html, (column, head, text) * MAX_PASSAGES]`` updates, unused slots hidden.
    """
    if not result:
        return [gr.update(value="", visible=False)] + [gr.update(visible=False)] * (3 * MAX_PASSAGES)
    answered = result["answer"] is not None
    updates: list[Any] = [gr.update(value=_answer_html(result, corpus, plural), visible=True)]
    passages = result["passages"][:MAX_PASSAGES]
    for rank in range(MAX_PASSAGES):
        if rank < len(passages):
            passage = passages[rank]
            updates += [
                gr.update(visible=True),
                gr.update(value=_passage_head(rank + 1, passage, answered)),
                gr.update(value=_highlight_value(passage, result["answer"])),
            ]
        else:
            updates += [gr.update(visible=False), gr.update(), gr.update()]
    return updates
