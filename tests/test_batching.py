"""The question batcher: concurrent callers share model calls and get the answers they would alone.

The real bundled model runs here (batching changes how the model is called, so the model is
what must agree); a counting wrapper sees every model call.
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from qa import QA, Answer, BatchingQA, QuestionError

QUESTIONS = [
    "When did Dalian receive the Global 500 award?",
    "Who proposed the Dalian Environmental Model Zone?",
    "When did Ryutaro Hashimoto visit China?",
    "How many projects did the investment include?",
    "What is Dalian's urban development idea?",
    "Which city worked with Dalian on the environment?",
    "What did Kitakyushu send to Dalian?",
    "How was the air quality improved?",
]


class CountingEncoder:
    """The real encoder, counting its model calls and the texts in each."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.calls: list[int] = []
        self.fail = False
        self._lock = threading.Lock()

    def _count(self, texts: list[str]) -> None:
        if self.fail:
            raise RuntimeError("model exploded")
        with self._lock:
            self.calls.append(len(texts))

    def encode(self, texts: list[str], **kwargs: Any) -> np.ndarray:
        self._count(texts)
        return self.inner.encode(texts, **kwargs)  # type: ignore[no-any-return]

    def encode_with_tokens(self, texts: list[str], **kwargs: Any) -> tuple[np.ndarray, list[np.ndarray]]:
        self._count(texts)
        return self.inner.encode_with_tokens(texts, **kwargs)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def counting(real_encoder: Any) -> CountingEncoder:
    return CountingEncoder(real_encoder)


@pytest.fixture(scope="module")
def base(counting: CountingEncoder) -> QA:
    engine = QA.default(encoder=counting)
    engine.warm_up()
    return engine


def same_answer(one: Answer, other: Answer) -> None:
    """Equal answers: the same sentence and passages; scores equal within float noise of batching."""
    assert one.question == other.question
    assert one.answer == other.answer
    assert one.confidence == pytest.approx(other.confidence, abs=2e-3)
    assert [(p.source, p.start, p.end, p.highlights) for p in one.passages] == \
           [(p.source, p.start, p.end, p.highlights) for p in other.passages]


def test_concurrent_questions_share_model_calls_and_match_sequential(base: QA,
                                                                     counting: CountingEncoder) -> None:
    sequential = {q: base.ask(q, 3) for q in QUESTIONS}
    batching = BatchingQA(base, max_wait_s=0.05)
    start = threading.Barrier(len(QUESTIONS) * 2)

    def ask(question: str) -> Answer:
        start.wait(timeout=30)
        return batching.ask(question, 3)

    counting.calls.clear()
    try:
        with ThreadPoolExecutor(len(QUESTIONS) * 2) as pool:
            answers = list(pool.map(ask, QUESTIONS * 2))
    finally:
        batching.close()
    for question, answer in zip(QUESTIONS * 2, answers, strict=True):
        same_answer(answer, sequential[question])
    # 16 callers, 8 distinct questions: far fewer model calls than callers, every
    # question embedded (duplicates in one batch are embedded together, not cached yet).
    assert 1 <= len(counting.calls) < len(QUESTIONS)
    assert sum(counting.calls) <= len(QUESTIONS) * 2
    assert max(counting.calls) > 1
    assert batching.stats.batches == len(counting.calls)
    assert batching.stats.questions == len(QUESTIONS) * 2


def test_a_bad_question_is_refused_alone(base: QA) -> None:
    batching = BatchingQA(base, max_wait_s=0.05)
    try:
        with ThreadPoolExecutor(4) as pool:
            good = [pool.submit(batching.ask, q, 2) for q in QUESTIONS[:3]]
            bad = pool.submit(batching.ask, " \u200b ", 2)
            bad_k = pool.submit(batching.ask, QUESTIONS[0], 0)
            with pytest.raises(QuestionError, match="empty"):
                bad.result(timeout=60)
            with pytest.raises(QuestionError, match="top_k"):
                bad_k.result(timeout=60)
            for future, question in zip(good, QUESTIONS, strict=False):
                same_answer(future.result(timeout=60), base.ask(question, 2))
    finally:
        batching.close()


def test_mixed_top_k_in_one_burst(base: QA) -> None:
    batching = BatchingQA(base, max_wait_s=0.05)
    try:
        with ThreadPoolExecutor(6) as pool:
            futures = {(q, k): pool.submit(batching.ask, q, k) for q in QUESTIONS[:3] for k in (1, 5)}
            for (question, top_k), future in futures.items():
                answer = future.result(timeout=60)
                assert len(answer.passages) == top_k
                same_answer(answer, base.ask(question, top_k))
    finally:
        batching.close()


def test_async_callers_batch_too(base: QA, counting: CountingEncoder) -> None:
    batching = BatchingQA(base, max_wait_s=0.05)

    async def many() -> list[Answer]:
        return await asyncio.gather(*(batching.ask_async(f"{q} (async)", 3) for q in QUESTIONS))

    counting.calls.clear()
    try:
        answers = asyncio.run(many())
    finally:
        batching.close()
    assert [a.question for a in answers] == [f"{q} (async)" for q in QUESTIONS]
    assert counting.calls == [len(QUESTIONS)]


def test_a_model_fault_reaches_every_caller_and_the_batcher_survives(base: QA,
                                                                    counting: CountingEncoder) -> None:
    batching = BatchingQA(base, max_wait_s=0.05)
    try:
        counting.fail = True
        try:
            with ThreadPoolExecutor(3) as pool:
                futures = [pool.submit(batching.ask, f"{q} (fault)", 3) for q in QUESTIONS[:3]]
                for future in futures:
                    with pytest.raises(RuntimeError, match="model exploded"):
                        future.result(timeout=60)
        finally:
            counting.fail = False
        assert batching.ask(QUESTIONS[0], 3).answer == base.ask(QUESTIONS[0], 3).answer
    finally:
        batching.close()


def test_ready_follows_the_wrapped_engine(base: QA) -> None:
    assert base.ready
    assert BatchingQA(base).ready  # nothing asked through the wrapper yet
    assert not BatchingQA(QA.default(encoder=base.encoder)).ready


def test_closed_batcher_refuses(base: QA) -> None:
    batching = BatchingQA(base)
    batching.close()
    with pytest.raises(RuntimeError, match="closed"):
        batching.ask(QUESTIONS[0])
