"""Split repaired text into sentences (with offsets) and group them into passages.

Sentences come from blingfire (a fast, well-kept finite-state splitter: pysbd is ~50x
slower, which matters for the 20k-passage build benchmark).  Passages are windows of
consecutive sentences inside one paragraph: small enough for MiniLM (trained on 128 word
pieces, truncating at 256) and overlapping so an answer that needs its neighbour still
sits in one passage.
"""

from __future__ import annotations

from dataclasses import dataclass

import blingfire

from ingest.document import PassageSpan, SentenceSpan


@dataclass(frozen=True)
class ChunkingParams:
    """How sentences are grouped into passages (recorded in the index manifest).

    Attributes:
        sentences_per_passage: Window size in sentences.
        overlap: Sentences shared by consecutive windows.
        max_chars: A window stops growing past this many characters (~200 word pieces).
    """

    sentences_per_passage: int = 3
    overlap: int = 1
    max_chars: int = 900

    def __post_init__(self) -> None:
        if self.sentences_per_passage < 1:
            raise ValueError("sentences_per_passage must be at least 1")
        if not 0 <= self.overlap < self.sentences_per_passage:
            raise ValueError("overlap must be in [0, sentences_per_passage)")


def _paragraph_bounds(text: str) -> list[tuple[int, int]]:
    bounds = []
    cursor = 0
    for part in text.split("\n\n"):
        if part.strip():
            bounds.append((cursor, cursor + len(part)))
        cursor += len(part) + 2
    return bounds


def split_sentences(text: str) -> list[SentenceSpan]:
    """Sentences of a repaired text, never crossing a paragraph boundary.

    Args:
        text: Repaired text (see ``ingest.repair.repair_text``).

    Returns:
        Sentence spans in document order; ``text[s.start:s.end]`` is stripped of spaces.
    """
    spans: list[SentenceSpan] = []
    for number, (p_start, p_end) in enumerate(_paragraph_bounds(text)):
        paragraph = text[p_start:p_end]
        _, offsets = blingfire.text_to_sentences_and_offsets(paragraph)
        if not offsets:
            offsets = [(0, len(paragraph))]
        for start, end in offsets:
            piece = paragraph[start:end]
            lead = len(piece) - len(piece.lstrip())
            trail = len(piece) - len(piece.rstrip())
            if end - trail > start + lead:
                spans.append(SentenceSpan(p_start + start + lead, p_start + end - trail, number))
    return spans


def make_passages(sentences: list[SentenceSpan], params: ChunkingParams) -> list[PassageSpan]:
    """Group consecutive sentences of each paragraph into overlapping windows.

    Every sentence belongs to at least one passage; a paragraph shorter than the window is
    one passage; an over-long window is cut at ``max_chars`` (but keeps at least one
    sentence).

    Args:
        sentences: Output of ``split_sentences`` for one document.
        params: Window size, overlap and character cap.

    Returns:
        Passage spans in document order.
    """
    passages: list[PassageSpan] = []
    step = params.sentences_per_passage - params.overlap
    index = 0
    while index < len(sentences):
        paragraph = sentences[index].paragraph
        last = index
        while (
            last + 1 < len(sentences)
            and last + 1 - index < params.sentences_per_passage
            and sentences[last + 1].paragraph == paragraph
            and sentences[last + 1].end - sentences[index].start <= params.max_chars
        ):
            last += 1
        passages.append(
            PassageSpan(sentences[index].start, sentences[last].end, paragraph, index, last)
        )
        paragraph_ends = last + 1 >= len(sentences) or sentences[last + 1].paragraph != paragraph
        index = last + 1 if paragraph_ends else max(index + 1, min(index + step, last + 1 - params.overlap))
    return passages
