"""The ``QA`` engine: an index, an encoder, and answered questions (with a small cache).

Why a class: a server keeps one engine per corpus and asks it many questions; the index
and the model load once, and repeated questions come from an LRU cache in microseconds.
Construction is cheap: the index loads (or builds) on first use, the model on first
embedding, each guarded by a lock so concurrent first questions do the work once.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from index import (
    ADD_STAGES,
    REMOVE_STAGES,
    BuildProgress,
    CorpusIndex,
    DocumentEntry,
    Encoder,
    IndexBuildError,
    UpdateOutcome,
    add_in_memory,
    add_to_index,
    build_and_save,
    cached_index,
    check_index,
    default_encoder,
    list_documents,
    remove_from_index,
)
from index.encoder import MODEL_NAME, token_encoder
from index.reranker import PairScorer, default_reranker
from ingest import (
    DEFAULT_CORPUS_TITLE,
    SKIP_DUPLICATE,
    ChunkingParams,
    Document,
    IngestReport,
    SkippedFile,
    default_documents,
    read_collection,
)
from ingest.errors import SpeechQAError
from qa.question import check_top_k, clean_question
from qa.ranking import RankingWeights, Rescorer, SentenceScores, rank
from qa.rerank import RerankWeights, rerank
from qa.sources import check_sources, restricted
from qa.types import Answer, DocumentInfo, UpdateReport

QUESTION_BATCH = 32
"""Questions per model batch in ``ask_many``.  Measured on the 2-core machine, 64 SQuAD
questions embedded with their token vectors, 8 interleaved rounds: 178 ms in batches of 32,
218 ms in batches of 64, 183 ms of 16, 208 ms of 8 (short texts: a smaller batch pads less
and stays in cache; a much smaller one pays the per-call overhead)."""

logger = logging.getLogger(__name__)

def _as_paths(paths: Path | str | Sequence[Path | str]) -> list[Path]:
    """One path or many: ``"docs/a.txt"`` is one file, not nine one-letter paths.

    Why: a ``str`` is itself a sequence, so ``from_paths("docs/")`` used to be read character
    by character; a bare ``Path`` raised ``TypeError``.
    """
    if isinstance(paths, (str, os.PathLike)):
        return [Path(paths)]
    if isinstance(paths, bytes):
        raise TypeError("paths must be str or pathlib.Path, not bytes")
    return [Path(path) for path in paths]

DEFAULT_EXAMPLES: tuple[str, ...] = (
    "When did Dalian receive the Global 500 award?",
    "Who proposed the Dalian Environmental Model Zone?",
    "When did Ryutaro Hashimoto visit China?",
    "How many projects did the investment include?",
    "What is Dalian's urban development idea?",
)
"""Questions the bundled speech answers (checked by the tests): the page's examples."""


def _as_questions(questions: str | Sequence[str]) -> list[str]:
    """A single question string is one question (not one per character)."""
    if isinstance(questions, str):
        return [questions]
    return list(questions)


def check_question(question: str, top_k: object = 3) -> tuple[str, int]:
    """Validate a question and ``top_k`` exactly as ``ask`` does, without answering.

    Why public: a server that batches questions (``BatchingQA``, a Ray Serve replica) must
    refuse a bad one alone, before it joins a batch whose other questions are fine.

    Returns:
        ``(cleaned question, top_k)``: what ``ask`` would answer.

    Raises:
        QuestionError: Empty or over-long question, or a bad ``top_k``.
    """
    return clean_question(question), check_top_k(top_k)


class QA:
    """Question answering over one corpus index.

    Use ``QA.default()`` (the bundled speech), ``QA.load(dir)`` or ``QA.from_paths(paths)``.
    """

    def __init__(self, index_loader: Callable[[], CorpusIndex], encoder: Encoder | None = None,
                 weights: RankingWeights | None = None, cache_size: int = 512,
                 index_dir: Path | str | None = None, *, name: str | None = None,
                 is_default_corpus: bool = False, reranker: PairScorer | bool | None = True,
                 rerank_weights: RerankWeights | None = None) -> None:
        """Cheap: nothing is read or embedded until the first question (or ``warm_up``).

        Args:
            index_loader: Returns the corpus index; called once.
            encoder: Embeds questions; the bundled model by default.
            weights: Ranking parameters; the fitted defaults by default.
            cache_size: Answers kept for repeated questions.
            index_dir: Where the index lives on disk, if it does: ``add`` and ``remove``
                then update it there (atomically) as well as in memory.
            name: What the collection is called (an index directory's name), if anything.
            is_default_corpus: True only for the bundled speech (``QA.default``).
            reranker: The second stage: True (default) for the shipped reranker when the
                encoder is the bundled model (its fusion was fitted on that model's
                ranking; another encoder ranks alone), False for none, or a scorer.
            rerank_weights: The second stage's parameters; the fitted defaults by default.
        """
        self.name = name
        self.is_default_corpus = is_default_corpus
        self._index_loader = index_loader
        self.index_dir = Path(index_dir).absolute() if index_dir is not None else None
        self.last_update: UpdateReport | None = None
        """What the last ``from_paths``, ``add`` or ``remove`` did (None before any)."""
        self._index: CorpusIndex | None = None
        self._encoder = encoder
        self.weights = weights or RankingWeights()
        if reranker is True:
            bundled = encoder is None or getattr(encoder, "name", None) == MODEL_NAME
            # SPEECH_QA_RERANK=0: an operator trades the second stage (about +100 ms a question
            # on 2 cores, bench/perf_rerank.py) for throughput.
            wanted = os.environ.get("SPEECH_QA_RERANK", "1") != "0"
            chosen: PairScorer | None = default_reranker() if bundled and wanted else None
        else:
            chosen = reranker or None
        self.reranker: PairScorer | None = chosen
        self.rerank_weights = rerank_weights or RerankWeights()
        # Answers are cached per reranker version too: a new model never serves old answers.
        self._cache: OrderedDict[tuple[str, int, tuple[str, ...] | None, str], Answer] = OrderedDict()
        self._cache_index: CorpusIndex | None = None
        """The index the cached answers came from: an answer is never served from another."""
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def default(cls, encoder: Encoder | None = None) -> QA:
        """The bundled speech; its index is cached in the user cache dir on first use."""
        def load() -> CorpusIndex:
            return cached_index(default_documents(), encoder or default_encoder())
        return cls(load, encoder, name=DEFAULT_CORPUS_TITLE, is_default_corpus=True)

    @classmethod
    def load(cls, index_dir: Path | str, encoder: Encoder | None = None, lazy: bool = False) -> QA:
        """An index saved by ``speech-qa index`` or ``QA.from_paths(..., index_dir=...)``.

        The directory is read and validated right away, so a bad path fails here.

        Args:
            index_dir: The index directory.
            encoder: Embeds questions (and added documents); the bundled model by default.
            lazy: Check only the manifest now and read the tables on first use (what
                ``add`` wants: adding to a large index never reads it).

        Raises:
            IndexLoadError: Missing, corrupt or foreign index, or built with another model.
        """
        name = (encoder or default_encoder()).name
        folder = Path(index_dir)
        called = folder.absolute().name or None
        if lazy:
            check_index(folder, name)
            return cls(lambda: CorpusIndex.load(folder, expected_model=name), encoder, index_dir=folder,
                       name=called)
        index = CorpusIndex.load(folder, expected_model=name)
        return cls(lambda: index, encoder, index_dir=folder, name=called)

    @classmethod
    def from_paths(cls, paths: Path | str | Sequence[Path | str], index_dir: Path | str | None = None,
                   encoder: Encoder | None = None, params: ChunkingParams | None = None,
                   show_progress: bool = False, strict: bool = False, replace: bool = False) -> QA:
        """Read files/folders, build their index now, and save it when ``index_dir`` is given.

        Files that cannot be read are skipped and named in ``last_update.skipped`` (with
        ``strict``, the first one raises instead).

        Args:
            paths: One file or folder, or a list of them (folders are read recursively).
            index_dir: Where to save the index.
            encoder: The embedding model (the bundled one by default).
            params: Passage chunking.
            show_progress: One stage bar on stderr.
            strict: Stop at the first unreadable or unsupported file.
            replace: Replace an index already at ``index_dir`` (otherwise refused, before
                anything is read: add to it with ``add`` instead).

        Raises:
            IngestError: A path is missing, nothing is readable, or (``strict``) a bad file.
            IndexBuildError: ``index_dir`` holds an index (without ``replace``) or is a
                foreign folder, or the index cannot be written (a previous one stays intact).
        """
        if index_dir is not None:
            _check_new_target(Path(index_dir), replace)  # before any slow work
        # One stage bar from reading the files to writing the index (a large collection
        # spends seconds in each stage, not only in the model).
        with BuildProgress(show_progress) as progress:
            progress.stage("read")
            report = read_collection(_as_paths(paths), strict=strict)
            engine = cls._from_documents(report.documents, index_dir, encoder, params, show_progress,
                                         progress)
        engine.last_update = UpdateReport(added=tuple(d.source for d in report.documents),
                                          skipped=report.skipped)
        return engine

    @classmethod
    def from_documents(cls, documents: Sequence[Document], index_dir: Path | str | None = None,
                       encoder: Encoder | None = None, params: ChunkingParams | None = None,
                       show_progress: bool = False) -> QA:
        """Index already-read documents (e.g. uploads plus the speech)."""
        with BuildProgress(show_progress) as progress:
            return cls._from_documents(documents, index_dir, encoder, params, show_progress, progress)

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
        return cls(lambda: index, encoder, index_dir=index_dir)

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
    def documents(self) -> tuple[DocumentInfo, ...]:
        """The collection's documents: name, passages, sentences, text size, when added.

        Read from the manifest alone while the index is not loaded (cheap for a large
        index); the texts themselves are ``index.documents``.
        """
        if self._index is None and self.index_dir is not None:
            return tuple(_info(entry) for entry in list_documents(self.index_dir))
        return documents_of(self.index)

    # ------------------------------------------------------------------ updates
    def add(self, paths: Sequence[Path | str], strict: bool = False,
            show_progress: bool = False) -> UpdateReport:
        """Add files and folders to the collection, embedding only them.

        A file whose text is already in the collection is skipped (a duplicate); a file
        with the name of an indexed document and new text replaces that version.  An
        index on disk is updated atomically: a crash leaves the old or the new one.

        Args:
            paths: Files and folders (read recursively).
            strict: Stop at the first unreadable or unsupported file.
            show_progress: One stage bar on stderr.

        Returns:
            What was added, replaced and skipped (``partial`` when a file was unreadable).

        Raises:
            IngestError: A path is missing, nothing is readable, or (``strict``) a bad file.
            IndexLoadError: The index on disk is missing, damaged or of another model.
            IndexBuildError: The update could not be written (the index is unchanged).
        """
        if self.index_dir is not None:
            check_index(self.index_dir, self.encoder.name)  # before reading the files
        with BuildProgress(show_progress, ADD_STAGES, name="add") as progress:
            progress.stage("read")
            report = read_collection(paths, strict=strict)
            outcome = self._add_documents(report.documents, progress)
        update = _update_report(outcome, report)
        self.last_update = update
        return update

    def _add_documents(self, documents: Sequence[Document], progress: BuildProgress) -> UpdateOutcome:
        if self.index_dir is not None:
            outcome = add_to_index(self.index_dir, documents, self.encoder, progress)
            if outcome.added:
                self._reload()
            return outcome
        index, outcome = add_in_memory(self.index, documents, self.encoder, progress)
        self._swap(index)
        return outcome

    def remove(self, sources: Sequence[str], show_progress: bool = False) -> UpdateReport:
        """Remove documents by name (``DocumentInfo.source``); nothing is embedded.

        Raises:
            IndexBuildError: A name is not in the collection (nothing is removed), or every
                document would go, or the update could not be written.
        """
        with BuildProgress(show_progress, REMOVE_STAGES, name="remove") as progress:
            if self.index_dir is not None:
                outcome = remove_from_index(self.index_dir, sources, progress)
                self._reload()
            else:
                index = self.index
                known = {document.source for document in index.documents}
                unknown = [source for source in sources if source not in known]
                if unknown:
                    raise IndexBuildError(f"no document named {', '.join(map(repr, unknown))}; "
                                          "nothing was removed")
                progress.stage("select")
                self._swap(index.without(set(sources)))
                outcome = UpdateOutcome(removed=tuple(dict.fromkeys(sources)))
        update = UpdateReport(removed=outcome.removed)
        self.last_update = update
        return update

    def _reload(self) -> None:
        """After an update on disk: read the new index now if one was loaded (else stay lazy)."""
        assert self.index_dir is not None
        if self._index is not None:
            self._swap(CorpusIndex.load(self.index_dir, expected_model=self.encoder.name))
        else:
            folder, name = self.index_dir, self.encoder.name
            self._index_loader = lambda: CorpusIndex.load(folder, expected_model=name)

    def _swap(self, index: CorpusIndex) -> None:
        """Serve ``index`` from now on; cached answers belong to the old one."""
        with self._lock:
            self._index = index
            self._index_loader = lambda: index
            self._cache.clear()
            self._cache_index = index

    def replace_index(self, index: CorpusIndex) -> None:
        """Answer from ``index`` from now on (a live server's reload: ``qa.live``).

        Why it is safe under load: the index is read once per batch of questions, so a batch
        in flight finishes on the index it started with (kept alive by that reference) and
        the next one starts on the new; nothing is shared between the two but the encoder.
        """
        self._swap(index)

    def prepare(self, index: CorpusIndex) -> None:
        """Answer one question from ``index`` (not served, not cached) so that what the
        ranking builds once per index (its tables, sample rows, token copies) is built now.

        Why: a live reload (``qa.live``) calls this before ``replace_index``; otherwise the
        first batch on the new version would build them while every asker waits.
        """
        tokens_from = token_encoder(self.encoder) if index.sentence_tokens is not None else None
        question_tokens: np.ndarray | None = None
        if tokens_from is not None:
            vectors, rows = tokens_from.encode_with_tokens(["warm up"])
            question_tokens = rows[0]
        else:
            vectors = self.encoder.encode(["warm up"])
        rank(index, "warm up", vectors[0], 1, self.weights, question_tokens)

    def check_sources(self, sources: Sequence[str] | None) -> tuple[str, ...] | None:
        """The chosen document names as ``ask`` uses them (None: the whole collection).

        Raises:
            QuestionError: An empty list, or a name the collection does not hold (named).
        """
        return check_sources(self.index, sources)

    @property
    def sources(self) -> tuple[str, ...]:
        """Names of the corpus' documents, as answers cite them."""
        return tuple(document.source for document in self.documents)

    @property
    def examples(self) -> tuple[str, ...]:
        """Example questions this corpus is known to answer: the speech's curated ones.

        Why none for other collections: an example must be a question the documents
        answer, and nothing here can write one honestly for an arbitrary collection.
        """
        return DEFAULT_EXAMPLES if self.is_default_corpus else ()

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
        if self.reranker is not None:
            self.reranker.score("warm up", ["warm up"])

    # ------------------------------------------------------------------ asking
    @property
    def _model_version(self) -> str:
        return self.reranker.version if self.reranker is not None else "-"

    def _rescorer(self, index: CorpusIndex) -> Rescorer | None:
        """The second stage bound to ``index`` and this engine's reranker, or None."""
        reranker, parameters = self.reranker, self.rerank_weights
        if reranker is None:
            return None

        def second_stage(question: str, scores: SentenceScores, weights: RankingWeights) -> SentenceScores:
            return rerank(index, question, scores, weights, reranker, parameters)

        return second_stage

    def ask(self, question: str, top_k: int = 3, sources: Sequence[str] | None = None) -> Answer:
        """Answer one question.

        Args:
            question: Natural-language question (1 to 2,000 characters).
            top_k: Passages to return, 1 to 50.
            sources: Ask only these documents (``DocumentInfo.source`` names): the ranking
                and the confidence are those of a collection holding only them
                (``qa.sources``). None asks the whole collection.

        Returns:
            The ``Answer``: best sentence (or None), confidence, passages best first.

        Raises:
            QuestionError: Empty or over-long question, a bad ``top_k``, or a name in
                ``sources`` that the collection does not hold.
        """
        return self.ask_many([question], top_k, sources)[0]

    def ask_many(self, questions: str | Sequence[str], top_k: int = 3,
                 sources: Sequence[str] | None = None) -> list[Answer]:
        """Answer many questions with one batched model call (for scripts and benchmarks).

        A single string is one question (one ``Answer`` in the list). ``sources`` as in ``ask``.
        """
        top_k = check_top_k(top_k)
        cleaned = [clean_question(q) for q in _as_questions(questions)]
        served = self.index  # read once: the whole batch is answered from this version
        chosen = check_sources(served, sources)
        answers: dict[int, Answer] = {}
        missing: list[int] = []
        with self._lock:
            if self._cache_index is not served:
                self._cache.clear()
                self._cache_index = served
            for i, question in enumerate(cleaned):
                hit = self._cache.get((question, top_k, chosen, self._model_version))
                if hit is not None:
                    self._cache.move_to_end((question, top_k, chosen, self._model_version))
                    answers[i] = hit
                else:
                    missing.append(i)
        if missing:
            index = restricted(served, chosen)
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
            rescorer = self._rescorer(index)
            for i, vector, question_tokens in zip(missing, vectors, tokens, strict=False):
                answers[i] = rank(index, cleaned[i], vector, top_k, self.weights, question_tokens,
                                  rescorer=rescorer)
            with self._lock:
                if self._cache_index is served:  # not if the index was replaced meanwhile
                    for i in missing:
                        self._cache[(cleaned[i], top_k, chosen, self._model_version)] = answers[i]
                while len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return [answers[i] for i in range(len(cleaned))]


def _check_new_target(target: Path, replace: bool) -> None:
    """Refuse, before any reading or embedding, an index folder that ``index`` must not
    write: a file, a foreign non-empty folder, or an index (unless ``replace``)."""
    if target.is_file():
        raise IndexBuildError(f"{target}: is a file, not an index directory")
    if not target.is_dir() or not any(target.iterdir()):
        return
    try:
        manifest = check_index(target)
    except SpeechQAError as exc:
        raise IndexBuildError(f"{target}: directory is not empty and is not a speech-qa index; "
                              "refusing to replace it") from exc
    if not replace:
        count = manifest["counts"].get("documents")
        raise IndexBuildError(
            f"{target}: already holds an index of {count} document(s); add files to it with "
            f"'speech-qa add PATH... --index {target}', or rebuild it with 'speech-qa index "
            "PATH... --index DIR --replace'")


def _info(entry: DocumentEntry, pages: int | None = None) -> DocumentInfo:
    return DocumentInfo(entry.source, entry.passages, entry.sentences, entry.size, entry.added_at, pages)


def documents_of(index: CorpusIndex) -> tuple[DocumentInfo, ...]:
    """The documents of a loaded index, with their page counts where the format has pages."""
    return tuple(_info(entry, len(document.page_starts) or None)
                 for entry, document in zip(index.entries, index.documents, strict=True))


def _update_report(outcome: UpdateOutcome, report: IngestReport) -> UpdateReport:
    duplicates = tuple(SkippedFile(given, SKIP_DUPLICATE, f"same text as {known}, already indexed")
                       for given, known in outcome.duplicates)
    return UpdateReport(added=outcome.added, replaced=outcome.replaced,
                        skipped=report.skipped + duplicates)


_default_engine: QA | None = None
_default_lock = threading.Lock()


def default_engine() -> QA:
    """The process-wide engine over the bundled speech."""
    global _default_engine
    with _default_lock:
        if _default_engine is None:
            _default_engine = QA.default()
        return _default_engine


def ask(question: str, top_k: int = 3, sources: Sequence[str] | None = None) -> Answer:
    """Ask the bundled speech a question (the model and index load on the first call).

    Example:
        >>> from qa import ask
        >>> ask("When did Dalian win the Global 500 award?").answer  # doctest: +SKIP
        'In 2001, through a recommendation from Kitakyushu City, Dalian was awarded ...'

    Raises:
        QuestionError: Empty or over-long question, or a bad ``top_k``.
    """
    return default_engine().ask(question, top_k, sources)
