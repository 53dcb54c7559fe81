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

from index.encoder import Encoder, default_encoder
from index.errors import IndexBuildError, IndexLoadError
from ingest.corpus import DEFAULT_CORPUS_TITLE
from ingest.errors import IngestError, SpeechQAError
from qa.batching import BatchingQA
from qa.engine import QA, ask, check_question, default_engine
from qa.errors import QAError, QuestionError
from qa.ranking import RankingWeights
from qa.types import Answer, Passage, Span

__all__ = [
    "DEFAULT_CORPUS_TITLE", "QA", "Answer", "BatchingQA", "Encoder", "IndexBuildError", "IndexLoadError",
    "IngestError",
    "Passage", "QAError", "QuestionError", "RankingWeights", "Span", "SpeechQAError", "ask", "check_question",
    "default_encoder", "default_engine",
]
