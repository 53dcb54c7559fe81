"""speech-qa: ask a speech (or your documents) questions; get the answering sentences.

    >>> from qa import ask
    >>> ask("When did Dalian win the Global 500 award?")  # doctest: +SKIP

Importing this package loads no model: the first question does, once per process.
"""

from qa.engine import QA, ask, default_engine
from qa.errors import QAError, QuestionError
from qa.ranking import RankingWeights
from qa.types import Answer, Passage, Span

__all__ = ["QA", "Answer", "Passage", "QAError", "QuestionError", "RankingWeights", "Span",
           "ask", "default_engine"]
