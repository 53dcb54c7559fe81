"""Answer-quality metrics and the benchmark's dataset readers (shared by CLI and bench).

Why in the library: ``speech-qa eval FILE`` and ``bench/quality.py`` must measure the same
thing the same way, and users can point ``eval`` at their own question sets.

Two file formats are read:

- SQuAD JSON (``{"data": [{"title", "paragraphs": [{"context", "qas": [...]}]}]}``): each
  article becomes one document (its paragraphs joined by blank lines) with its answerable
  questions; unanswerable (``is_impossible``) questions are skipped, because they are
  adversarial for their own paragraph rather than "not in the document".
- The project's simple format: a JSON list of ``{"question": ..., "answer": ...}``
  (``answer`` a string, a list of acceptable strings, or ``null`` for a question the
  document does not answer), asked against one corpus (the bundled speech by default).

Metrics, per answerable question (answer text matched case- and space-insensitively):

- ``sent@1``: the first highlighted sentence (what a user sees first) contains the answer
  (a withheld answer has no highlight; see ``first_sentence``);
- ``hit@1`` / ``hit@3``: a passage among the first 1 / 3 contains it;
- ``MRR@10``: reciprocal rank of the first passage (of 10) that contains it;
- abstention: the share of off-topic questions with ``answer is None`` (should be high) and
  the share of answerable ones wrongly declined (should be low).
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingest import Document
from qa.errors import QAError
from qa.types import Answer

MRR_DEPTH = 10


class EvalFormatError(QAError, ValueError):
    """An evaluation file is neither SQuAD JSON nor the simple question list."""


@dataclass(frozen=True)
class EvalQuestion:
    """One benchmark question.

    Attributes:
        question: The question text.
        answers: Acceptable answer texts; empty when the corpus should *not* answer it.
    """

    question: str
    answers: tuple[str, ...] = ()

    @property
    def answerable(self) -> bool:
        """Whether the corpus is expected to answer it."""
        return bool(self.answers)


@dataclass(frozen=True)
class EvalSet:
    """Documents and the questions asked against them.

    Attributes:
        name: Shown in reports (the SQuAD article title, or the file name).
        documents: The corpus (``None``: the bundled speech).
        questions: Answerable and, optionally, off-topic questions.
    """

    name: str
    documents: tuple[Document, ...] | None
    questions: tuple[EvalQuestion, ...]


# ---------------------------------------------------------------------- answer matching
_QUOTES = str.maketrans({"‘": "'", "’": "'", "“": '"', "”": '"', "–": "-", "—": "-"})
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-, quote- and whitespace-insensitive form used to match answer texts.

    Why not SQuAD's token F1: the question here is whether the user *sees* the answer in
    the sentence, so containment of the whole answer text is the honest test; only
    typography (curly quotes, line breaks, case) is forgiven.
    """
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES).lower()
    return _SPACE.sub(" ", text).strip()


def contains_answer(text: str | None, answers: Iterable[str]) -> bool:
    """Whether ``text`` contains any of the acceptable answers (after ``normalise``)."""
    if not text:
        return False
    haystack = normalise(text)
    return any(normalise(answer) and normalise(answer) in haystack for answer in answers)


# ---------------------------------------------------------------------- per-question results
@dataclass(frozen=True)
class QuestionResult:
    """What one answer scored.

    Attributes:
        answerable: Whether the question had an expected answer.
        declined: ``answer is None`` (the engine abstained).
        sentence_hit: The first highlighted sentence contains the answer.
        passage_rank: 1-based rank of the first passage containing it (0: none).
    """

    answerable: bool
    declined: bool
    sentence_hit: bool = False
    passage_rank: int = 0


def first_sentence(answer: Answer) -> str | None:
    """The sentence a user sees first: the top passage's first highlight.

    A withheld answer (``answer`` None) carries no highlights on any surface, so through the
    public API (``ask``, ``speech-qa eval``) it has no first sentence and counts as a miss in
    sent@1: sent@1 then measures what users are shown.  ``bench/quality.py`` builds its
    answers with ``qa.ranking.answer_from_scores(..., keep_highlights=True)``, which keeps
    the ranking's best sentence highlighted on a withheld answer, so there sent@1 measures
    the ranking and "answerable declined" the abstention, separately.
    """
    if not answer.passages:
        return answer.answer
    passage = answer.passages[0]
    if not passage.highlights:
        return answer.answer
    span = passage.highlights[0]
    return passage.text[span.start:span.end]


def score_answer(answer: Answer, question: EvalQuestion) -> QuestionResult:
    """Score one ``Answer`` against its expected answer texts."""
    declined = answer.answer is None
    if not question.answerable:
        return QuestionResult(answerable=False, declined=declined)
    rank = next((number for number, passage in enumerate(answer.passages[:MRR_DEPTH], 1)
                 if contains_answer(passage.text, question.answers)), 0)
    return QuestionResult(
        answerable=True,
        declined=declined,
        sentence_hit=contains_answer(first_sentence(answer), question.answers),
        passage_rank=rank,
    )


# ---------------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Metrics:
    """Pooled metrics over many questions (NaN-free: empty groups give 0.0)."""

    answerable: int
    off_topic: int
    sent_at_1: float
    hit_at_1: float
    hit_at_3: float
    mrr_at_10: float
    off_topic_declined: float
    answerable_declined: float

    def to_dict(self) -> dict[str, float | int]:
        """JSON-ready form."""
        return {key: (round(value, 4) if isinstance(value, float) else value)
                for key, value in self.__dict__.items()}


def summarise(results: Sequence[QuestionResult]) -> Metrics:
    """Pool per-question results into the reported metrics."""
    answerable = [r for r in results if r.answerable]
    off_topic = [r for r in results if not r.answerable]

    def share(items: Sequence[QuestionResult], test: Callable[[QuestionResult], bool]) -> float:
        return sum(1 for r in items if test(r)) / len(items) if items else 0.0

    mrr = (sum(1.0 / r.passage_rank for r in answerable if r.passage_rank) / len(answerable)
           if answerable else 0.0)
    return Metrics(
        answerable=len(answerable),
        off_topic=len(off_topic),
        sent_at_1=share(answerable, lambda r: r.sentence_hit),
        hit_at_1=share(answerable, lambda r: r.passage_rank == 1),
        hit_at_3=share(answerable, lambda r: 1 <= r.passage_rank <= 3),
        mrr_at_10=mrr,
        off_topic_declined=share(off_topic, lambda r: r.declined),
        answerable_declined=share(answerable, lambda r: r.declined),
    )


@dataclass
class Report:
    """Metrics per evaluation set and pooled (what ``speech-qa eval`` prints)."""

    per_set: dict[str, Metrics] = field(default_factory=dict)
    pooled: Metrics | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "sets": {name: metrics.to_dict() for name, metrics in self.per_set.items()},
            "pooled": self.pooled.to_dict() if self.pooled else None,
        }


TABLE_HEADER = ("| set | questions | sent@1 | hit@1 | hit@3 | MRR@10 | off-topic declined "
                "| answerable declined |\n|---|---:|---:|---:|---:|---:|---:|---:|")


def table_row(name: str, metrics: Metrics) -> str:
    """One Markdown table row (columns as ``TABLE_HEADER``)."""
    off_topic = f"{metrics.off_topic_declined:.3f} (of {metrics.off_topic})" if metrics.off_topic else "-"
    return (f"| {name} | {metrics.answerable} | {metrics.sent_at_1:.3f} | {metrics.hit_at_1:.3f} "
            f"| {metrics.hit_at_3:.3f} | {metrics.mrr_at_10:.3f} | {off_topic} "
            f"| {metrics.answerable_declined:.3f} |")


# ---------------------------------------------------------------------- readers
def _answer_texts(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value.strip() else ()
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item for item in value if item.strip())
    raise EvalFormatError(f"{where}: 'answer' must be a string, a list of strings or null")


def read_simple(data: object, source: str) -> EvalSet:
    """Read the simple format: ``[{"question": ..., "answer": str | [str] | null}, ...]``.

    Raises:
        EvalFormatError: Not a list of such objects.
    """
    if not isinstance(data, list):
        raise EvalFormatError(f"{source}: expected a JSON list of {{question, answer}} objects")
    questions = []
    for number, item in enumerate(data, 1):
        where = f"{source}: item {number}"
        if not isinstance(item, dict) or not isinstance(item.get("question"), str) \
                or not item["question"].strip():
            raise EvalFormatError(f"{where}: needs a non-empty 'question' string")
        questions.append(EvalQuestion(item["question"].strip(),
                                      _answer_texts(item.get("answer"), where)))
    return EvalSet(Path(source).name, None, tuple(questions))


def read_squad(data: object, source: str) -> list[EvalSet]:
    """Read SQuAD JSON: one ``EvalSet`` per article, its answerable questions only.

    Paragraphs are joined with a blank line so the article reads as one document, the way
    a user would index it.

    Raises:
        EvalFormatError: The structure is not SQuAD's.
    """
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise EvalFormatError(f"{source}: expected SQuAD JSON with a 'data' list")
    sets = []
    for number, article in enumerate(data["data"], 1):
        try:
            title = str(article.get("title") or f"article {number}")
            contexts = [paragraph["context"].strip() for paragraph in article["paragraphs"]]
            questions = tuple(
                EvalQuestion(qa["question"].strip(),
                             tuple(dict.fromkeys(a["text"] for a in qa["answers"] if a["text"].strip())))
                for paragraph in article["paragraphs"] for qa in paragraph["qas"]
                if not qa.get("is_impossible") and qa.get("answers")
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise EvalFormatError(f"{source}: article {number} is not in SQuAD form ({exc})") from exc
        document = Document(title, title, "\n\n".join(c for c in contexts if c))
        sets.append(EvalSet(title, (document,), questions))
    return sets


def load_eval_file(path: Path | str) -> list[EvalSet]:
    """Read an evaluation file in either format (detected from its structure).

    Raises:
        EvalFormatError: Unreadable, not JSON, or neither format.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise EvalFormatError(f"{path}: cannot be read ({exc.strerror or exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EvalFormatError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(data, dict) and "data" in data:
        return read_squad(data, str(path))
    return [read_simple(data, str(path))]


def with_off_topic(sets: Sequence[EvalSet]) -> list[EvalSet]:
    """Add every other set's answerable questions to each set, as off-topic questions.

    Why: a question about the Normans asked of an article on complexity theory has no
    answer there, a fair and plentiful test of "not in this document".
    """
    result = []
    for own in sets:
        foreign = tuple(EvalQuestion(q.question) for other in sets if other is not own
                        for q in other.questions if q.answerable)
        result.append(EvalSet(own.name, own.documents, own.questions + foreign))
    return result


def evaluate(answers: Sequence[Answer], questions: Sequence[EvalQuestion]) -> list[QuestionResult]:
    """Score answers (in question order)."""
    if len(answers) != len(questions):
        raise ValueError(f"got {len(answers)} answers for {len(questions)} questions")
    return [score_answer(answer, question) for answer, question in zip(answers, questions, strict=True)]
