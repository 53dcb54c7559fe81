"""Drawing an ``Answer.to_dict()`` into the page's widgets: the answer card and the passages.

Why its own module: presentation rules (what is highlighted, what a passage header says)
are tested without building a page, and the page module stays about layout and events.
"""

from __future__ import annotations

import html
from typing import Any

import gradio as gr

from qa import MAX_TOP_K

MAX_PASSAGES = MAX_TOP_K
"""Most passages the page shows (the slider's maximum; the same range as Python, the CLI and
the JSON API); the widgets are created up front, hidden until used."""

ANSWER_LABEL = "answer"
"""HighlightedText category of the best answering sentence."""
ALSO_LABEL = "also relevant"
"""Category of a passage's other answering sentences."""

PHRASE_LABEL = "answer phrase"
"""Category of the exact answer phrase inside the answer sentence (``Answer.phrase``)."""

COLOURS = {ANSWER_LABEL: "#facc15", ALSO_LABEL: "#fde68a", PHRASE_LABEL: "#f97316"}
"""Gradio draws these at half opacity: a clear yellow for the answer, a faint amber for the rest."""

def _highlight_value(passage: dict[str, Any], answer: str | None,
                     phrase_span: dict[str, int] | None = None) -> dict[str, Any]:
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
        inside = phrase_span is not None and is_answer \
            and start <= phrase_span["start"] < phrase_span["end"] <= end
        if inside and phrase_span is not None:
            # the phrase gets its own, stronger colour inside the answer sentence
            pieces = [(start, phrase_span["start"], ANSWER_LABEL),
                      (phrase_span["start"], phrase_span["end"], PHRASE_LABEL),
                      (phrase_span["end"], end, ANSWER_LABEL)]
            entities += [{"entity": label, "start": a, "end": b} for a, b, label in pieces if b > a]
        else:
            entities.append({"entity": ANSWER_LABEL if is_answer else ALSO_LABEL, "start": start,
                             "end": end})
        cursor = end
    return {"text": text, "entities": entities}


def _place(passage: dict[str, Any]) -> str:
    """Where a passage sits: "p. 2, paragraph 3" for a paged document, else "paragraph 3"."""
    paragraph = f"paragraph {passage['paragraph']}"
    page = passage.get("page")
    return f"p. {page}, {paragraph}" if page is not None else paragraph


def _answer_html(result: dict[str, Any], corpus: str, plural: bool) -> str:
    """The prominent box above the passages: the answer sentence, or a plain 'no answer'."""
    if result["answer"] is None and result.get("notice"):
        return (
            '<div class="answer-box no-answer" id="answer-box">'
            '<p class="answer-kicker">Try English</p>'
            f'<p class="answer-text">{html.escape(result["notice"])}</p>'
            "</div>"
        )
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
    where = f" · {html.escape(best['source'])}, {_place(best)}" if best else ""
    return (
        '<div class="answer-box" id="answer-box">'
        '<p class="answer-kicker">Answer</p>'
        f"{_phrase_html(result)}"
        f'<p class="answer-text">{_sentence_html(result)}</p>'
        f'<p class="answer-meta">confidence {result["confidence"]:.2f}{where}</p>'
        "</div>"
    )


def render_problem(message: str) -> list[Any]:
    """A rejected question: the stale answer and passages go, the reason shows in their place.

    Why in place and not only a toast: on a phone the toast covered the title while the
    previous answer stayed on screen, reading as the answer to the new question.
    """
    box = (
        '<div class="answer-box problem" id="answer-box" role="alert">'
        '<p class="answer-kicker">Please check the question</p>'
        f'<p class="answer-text">{html.escape(message)}</p>'
        "</div>"
    )
    return [gr.update(value=box, visible=True)] + [gr.update(visible=False)] * (3 * MAX_PASSAGES)


def _phrase_html(result: dict[str, Any]) -> str:
    """The exact answer phrase, large, above the sentence (nothing when there is none)."""
    phrase = result.get("phrase")
    return f'<p class="answer-phrase" id="answer-phrase">{html.escape(phrase)}</p>' if phrase else ""


def _sentence_html(result: dict[str, Any]) -> str:
    """The answer sentence with its phrase emphasised in place (``<mark>``)."""
    sentence: str = result["answer"]
    phrase, span = result.get("phrase"), result.get("phrase_span")
    passages = result.get("passages") or []
    if not phrase or not span or not passages or not passages[0].get("highlights"):
        return html.escape(sentence)
    offset = span["start"] - passages[0]["highlights"][0]["start"]
    if sentence[offset:offset + len(phrase)] != phrase:
        return html.escape(sentence)
    return (html.escape(sentence[:offset]) + f"<mark>{html.escape(phrase)}</mark>"
            + html.escape(sentence[offset + len(phrase):]))


def _passage_head(rank: int, passage: dict[str, Any], answered: bool) -> str:
    """One line over a passage: its rank, document, paragraph and score."""
    kind = "Passage" if answered else "Closest passage"
    return (
        f'<p class="passage-head"><b>{kind} {rank}</b> · {html.escape(passage["source"])}, '
        f'{_place(passage)} · score {passage["score"]:.2f}</p>'
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
                gr.update(value=_highlight_value(passage, result["answer"],
                                                 result.get("phrase_span") if rank == 0 else None)),
            ]
        else:
            updates += [gr.update(visible=False), gr.update(), gr.update()]
    return updates
