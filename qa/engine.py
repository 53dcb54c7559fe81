"""The ``QA`` engine: an index, an encoder, and answered questions (with a small cache).

Why a class: a server keeps one engine per corpus and asks it many questions; the index
and the model load once, and repeated questions come from an LRU cache in microseconds.
Construction is cheap: the index loads (or builds) on first use, the model on first
embedding, each guarded by a lock so concurrent first questions do the work once.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from index import CorpusIndex, Encoder, cached_index, default_encoder
from index.encoder import token_encoder
from index.store import BuildProgress, build_and_save
from ingest import ChunkingParams, Document, default_documents, load_documents
from qa.errors import QuestionError
from qa.question import clean_question
from qa.ranking import RankingWeights, rank
from qa.types import Answer

QUESTION_BATCH = 32
"""Questions per model batch in ``ask_many``.  Measured on the 2-core machine, 64 SQuAD
questions embedded with their token vectors, 8 interleaved rounds: 178 ms in batches of 32,
218 ms in batches of 64, 183 ms of 16, 208 ms of 8 (short texts: a smaller batch pads less
and stays in cache; a much smaller one pays the per-call overhead)."""

logger = logging.getLogger(__name__)

MAX_TOP_K = 50


def _check_top_k(top_k: object) -> int:
    if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= MAX_TOP_K:
        raise QuestionError(f"top_k must be a whole number from 1 to {MAX_TOP_K}, got {top_k!r}")
    return top_k


def check_question(question: str, top_k: object = 3) -> tuple[str, int]:
    """Validate a question and ``top_k`` exactly as ``ask`` does, without answering.

    Why public: a server that batches questions (``BatchingQA``, a Ray Serve replica) must
    refuse a bad one alone, before it joins a batch whose other questions are fine.

    Returns:
        ``(cleaned question, top_k)``: what ``ask`` would answer.

    Raises:
        QuestionError: Empty or over-long question, or a bad ``top_k``.
    """
    return clean_question(question), _check_top_k(top_k)


class QA:
    """Question answering over one corpus index.

    Use ``QA.default()`` (the bundled speech), ``QA.load(dir)`` or ``QA.from_paths(paths)``.
    """

    def __init__(self, index_loader: Callable[[], CorpusIndex], encoder: Encoder | None = None,
                 weights: RankingWeights | None = None, cache_size: int = 512) -> None:
        """Cheap: nothing is read or embedded until the first question (or ``warm_up``).

        Args:
            index_loader: Returns the corpus index; called once.
            encoder: Embeds questions; the bundled model by default.
            weights: Ranking parameters; the fitted defaults by default.
            cache_size: Answers kept for repeated questions.
        """
        self._index_loader = index_loader
        self._index: CorpusIndex | None = None
        self._encoder = encoder
        self.weights = weights or RankingWeights()
        self._cache: OrderedDict[tuple[str, int], Answer] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def default(cls, encoder: Encoder | None = None) -> QA:
        """The bundled speech; its index is cached in the user cache dir on first use."""
        def load() -> CorpusIndex:
            return cached_index(default_documents(), encoder or default_encoder())
        return cls(load, encoder)

    @classmethod
    def load(cls, index_dir: Path | str, encoder: Encoder | None = None) -> QA:
        """An index saved by ``speech-qa index`` or ``QA.from_paths(..., index_dir=...)``.

        The directory is read and validated right away, so a bad path fails here.

        Raises:
            IndexLoadError: Missing, corrupt or foreign index, or built with another model.
        """
        name = (encoder or default_encoder()).name
        index = CorpusIndex.load(index_dir, expected_model=name)
        return cls(lambda: index, encoder)

    @classmethod
    def from_paths(cls, paths: Sequence[Path | str], index_dir: Path | str | None = None,
                   encoder: Encoder | None = None, params: ChunkingParams | None = None,
                   show_progress: bool = False) -> QA:
        """Read files/folders, build their index now, and save it when ``index_dir`` is given.

        Raises:
            IngestError: A path is missing or a file cannot be read.
            IndexBuildError: The index cannot be written (a previous one stays intact).
        """
        # One stage bar from reading the files to writing the index (a large collection
        # spends seconds in each stage, not only in the model).
        progress = BuildProgress(show_progress)
        try:
            progress.stage("read")
            documents = load_documents(paths)
            return cls._from_documents(documents, index_dir, encoder, params, show_progress, progress)
        finally:
            progress.close()

    @classmethod
    def from_documents(cls, documents: Sequence[Document], index_dir: Path | str | None = None,
                       encoder: Encoder | None = None, params: ChunkingParams | None = None,
                       show_progress: bool = False) -> QA:
        """Index already-read documents (e.g. uploads plus the speech)."""
        progress = BuildProgress(show_progress)
        try:
            return cls._from_documents(documents, index_dir, encoder, params, show_progress, progress)
        finally:
            progress.close()

    @classmethod
    def _from_documents(cls, documents: Sequence[Document], index_dir: Path | str | None,
                        encoder: Encoder | None, params: ChunkingParams | None,
                        show_progress: bool, progress: BuildProgress) -> QA:
        used_encoder = encoder or default_encoder()
        if index_dir is None:
            index = CorpusIndex.build(documents, used_encoder, params, show_progress=show_progress,
                                      progress=progress)
        else:
            index = build_and_save(documents, used_encoder, Path(index_dir), params, show_progress,
                                   progress)
        return cls(lambda: index, encoder)

    # ------------------------------------------------------------------ state
    @property
    def encoder(self) -> Encoder:
        """The question encoder (the bundled model unless one was given)."""
        if self._encoder is None:
            self._encoder = default_encoder()
        return self._encoder

    @property
    def index(self) -> CorpusIndex:
        """The corpus index, loaded on first access."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    self._index = self._index_loader()
        return self._index

    @property
    def documents(self) -> list[Document]:
        """The corpus' documents (repaired texts)."""
        return self.index.documents

    @property
    def ready(self) -> bool:
        """Whether the index and the model are in memory (a server's health check)."""
        encoder_loaded = self._encoder is not None and bool(getattr(self._encoder, "loaded", True))
        return self._index is not None and encoder_loaded

    def warm_up(self) -> None:
        """Load the index and the model now, so the first question is as fast as the rest."""
        index = self.index
        tokens_from = token_encoder(self.encoder) if index.sentence_tokens is not None else None
        if tokens_from is not None:
            tokens_from.encode_with_tokens(["warm up"])  # also builds its token filter
        else:
            self.encoder.encode(["warm up"])

    # ------------------------------------------------------------------ asking
    def ask(self, question: str, top_k: int = 3) -> Answer:
        """Answer one question.

        Args:
            question: Natural-language question (1 to 2,000 characters).
            top_k: Passages to return, 1 to 50.

        Returns:
            The ``Answer``: best sentence (or None), confidence, passages best first.

        Raises:
            QuestionError: Empty or over-long question, or a bad ``top_k``.
        """
        return self.ask_many([question], top_k)[0]

    def ask_many(self, questions: Sequence[str], top_k: int = 3) -> list[Answer]:
        """Answer many questions with one batched model call (for scripts and benchmarks)."""
        top_k = _check_top_k(top_k)
        cleaned = [clean_question(q) for q in questions]
        answers: dict[int, Answer] = {}
        missing: list[int] = []
        with self._lock:
            for i, question in enumerate(cleaned):
                hit = self._cache.get((question, top_k))
                if hit is not None:
                    self._cache.move_to_end((question, top_k))
                    answers[i] = hit
                else:
                    missing.append(i)
        if missing:
            index = self.index
            texts = [cleaned[i] for i in missing]
            # One batched model call either way; with late interaction it also returns the
            # questions' token vectors (same forward pass).
            tokens_from = token_encoder(self.encoder) if index.sentence_tokens is not None else None
            tokens: list[np.ndarray | None] = [None] * len(texts)
            if tokens_from is None:
                vectors = self.encoder.encode(texts, batch_size=QUESTION_BATCH)
            else:
                vectors, token_rows = tokens_from.encode_with_tokens(texts, batch_size=QUESTION_BATCH)
                tokens = list(token_rows)
            for i, vector, question_tokens in zip(missing, vectors, tokens, strict=False):
                answers[i] = rank(index, cleaned[i], vector, top_k, self.weights, question_tokens)
            with self._lock:
                for i in missing:
                    self._cache[(cleaned[i], top_k)] = answers[i]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [answers[i] for i in range(len(cleaned))]


_default_engine: QA | None = None
_default_lock = threading.Lock()


def default_engine() -> QA:
    """The process-wide engine over the bundled speech."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = QA.default()
        return _default_engine


def ask(question: str, top_k: int = 3) -> Answer:
    """Ask the bundled speech a question (the model and index load on the first call).

    Example:
        >>> from qa import ask
        >>> ask("When did Dalian win the Global 500 award?").answer  # doctest: +SKIP
        'In 2001, through a recommendation from Kitakyushu City, Dalian was awarded ...'

    Raises:
        QuestionError: Empty or over-long question, or a bad ``top_k``.
    """
    return default_engine().ask(question, top_k)
