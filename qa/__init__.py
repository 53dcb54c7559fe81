"""speech-qa: ask a speech (or your documents) questions; get the answering sentences.

    >>> from qa import ask
    >>> ask("When did Dalian win the Global 500 award?")  # doctest: +SKIP

Importing this package loads no model: the first question does, once per process.

Errors: everything the product raises on purpose derives from ``SpeechQAError``
(``QuestionError`` for a bad question, ``IngestError`` for a file that cannot be read,
``IndexLoadError`` / ``IndexBuildError`` for an index), so ``except SpeechQAError`` catches
every deliberate refusal and lets real bugs surface. They are re-exported here so callers
(and ``ui/``) need nothing but ``qa``.
"""

from index.encoder import Encoder
from index.errors import IndexBuildError, IndexLoadError
from index.onnx_encoder import default_encoder
from ingest.corpus import DEFAULT_CORPUS_TITLE, SkippedFile
from ingest.errors import IngestError, SpeechQAError
from ingest.readers import SUPPORTED_SUFFIXES
from qa.batching import BatchingQA
from qa.engine import DEFAULT_EXAMPLES, QA, ask, check_question, default_engine
from qa.errors import QAError, QuestionError
from qa.question import MAX_QUESTION_CHARS, MAX_TOP_K, question_problem
from qa.ranking import RankingWeights
from qa.session import (
    IndexingProgress,
    UploadProblem,
    UploadResult,
    UploadSession,
    UploadSessions,
    release_memory,
)
from qa.types import Answer, DocumentInfo, Passage, Span, UpdateReport

__all__ = [
    "DEFAULT_CORPUS_TITLE",
    "DEFAULT_EXAMPLES",
    "MAX_QUESTION_CHARS",
    "MAX_TOP_K",
    "QA",
    "SUPPORTED_SUFFIXES",
    "Answer",
    "BatchingQA",
    "DocumentInfo",
    "Encoder",
    "IndexBuildError",
    "IndexLoadError",
    "IndexingProgress",
    "IngestError",
    "Passage",
    "QAError",
    "QuestionError",
    "RankingWeights",
    "SkippedFile",
    "Span",
    "SpeechQAError",
    "UpdateReport",
    "UploadProblem",
    "UploadResult",
    "UploadSession",
    "UploadSessions",
    "ask",
    "check_question",
    "default_encoder",
    "default_engine",
    "question_problem",
    "release_memory",
]
