"""Candidate ranking for big corpora: which sentences are scored, and that answers hold."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_qa import SPEECH_QUESTIONS

from qa.candidates import CandidatePool, candidate_sentences, expand_ranges, top_positive
from qa.evaluation import first_sentence
from qa.ranking import RankingWeights, _tables, answer_from_scores, rank, score_sentences

SMALL_POOL = CandidatePool(dense_sentences=5, dense_passages=3, lexical_sentences=5, lexical_passages=3)


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(-3, 8)), max_size=20))
def test_expand_ranges_matches_concatenated_ranges(pairs: list[tuple[int, int]]) -> None:
    starts = np.array([s for s, _ in pairs], dtype=np.int64)
    ends = np.array([s + d for s, d in pairs], dtype=np.int64)
    expected = [i for s, e in zip(starts, ends, strict=True) for i in range(s, e + 1)]
    assert expand_ranges(starts, ends).tolist() == expected


@given(st.lists(st.floats(-5, 5), max_size=40), st.integers(1, 10))
def test_top_positive_keeps_the_best_positive_scores(values: list[float], count: int) -> None:
    scores = np.array(values, dtype=np.float32)
    chosen = set(top_positive(scores, count).tolist())
    positive = [i for i, v in enumerate(values) if scores[i] > 0]
    assert chosen <= set(positive) and len(chosen) == min(count, len(positive))
    if chosen and len(positive) > len(chosen):
        assert min(scores[list(chosen)]) >= max(scores[[i for i in positive if i not in chosen]])


@pytest.fixture(scope="module")
def corpus_index() -> Any:
    """A corpus of many short paragraphs about different things (fake encoder)."""
    from conftest import FakeEncoder

    from index import CorpusIndex
    from ingest import Document

    topics = ["bridge", "harbour", "forest", "river", "factory", "school", "market", "railway"]
    paragraphs = [f"The {topic} number {n} was built in {1900 + n}. Its {topic} keeper is called "
                  f"Keeper{n}. Visitors to the {topic} come by bus. The {topic} closes at night."
                  for n, topic in enumerate(topics * 6)]
    paragraphs.append("The lighthouse opened in 1874 and its lamp burns whale oil. "
                      "Its keeper writes poems. Ships see the lamp from far away.")
    return CorpusIndex.build([Document("d", "d.txt", "\n\n".join(paragraphs))], FakeEncoder())


def test_candidates_hold_the_nearest_and_the_best_lexical_sentence_with_whole_passages(
        corpus_index: Any) -> None:
    from conftest import FakeEncoder

    question = "When did the lighthouse open?"
    vector = FakeEncoder().encode([question])[0]
    tables = _tables(corpus_index)
    bm25 = corpus_index.sentence_bm25.scores(["lighthous", "open"])
    passage_bm25 = corpus_index.passage_bm25.scores(["lighthous", "open"])
    ids = candidate_sentences(corpus_index, vector, bm25, passage_bm25, tables.first_passage,
                              tables.last_passage, tables.passage_first, tables.passage_last, SMALL_POOL)
    assert ids.tolist() == sorted(set(ids.tolist())) and 0 < ids.size < len(corpus_index.sentences)
    assert int(np.argmax(corpus_index.sentence_vectors @ vector)) in ids
    assert int(np.argmax(bm25)) in ids
    chosen = set(ids.tolist())
    nearest_passages = corpus_index.passage_index.search(vector[None], SMALL_POOL.dense_passages)[1][0]
    best_lexical = int(np.argmax(bm25))
    holding = range(tables.first_passage[best_lexical], tables.last_passage[best_lexical] + 1)
    for passage in [*nearest_passages.tolist(), *holding]:
        record = corpus_index.passages[passage]
        assert set(range(record.first, record.last + 1)) <= chosen, f"passage {passage} is not whole"


def test_candidate_ranking_scores_a_subset_and_answers_like_the_full_ranking(corpus_index: Any) -> None:
    from conftest import FakeEncoder

    n = len(corpus_index.sentences)
    for question in ["When did the lighthouse open?", "Who is the keeper of the railway number 7?",
                     "How do visitors come to the market?"]:
        vector = FakeEncoder().encode([question])[0]
        full = score_sentences(corpus_index, question, vector, RankingWeights())
        partial = score_sentences(corpus_index, question, vector, RankingWeights(), full_ranking_max=0,
                                  pool=SMALL_POOL)
        assert full.ids.tolist() == list(range(n))
        assert partial.ids.size < n / 2 and np.isfinite(partial.features).all()
        assert partial.features.shape == (partial.ids.size, full.features.shape[1])
        # features that do not depend on corpus statistics are identical row for row
        for column in (0, 2, 9, 10, 11, 12):
            np.testing.assert_allclose(partial.features[:, column], full.features[partial.ids, column],
                                       rtol=1e-5, atol=1e-6)
        expected = first_sentence(answer_from_scores(corpus_index, question, full, 3, RankingWeights()))
        answer = answer_from_scores(corpus_index, question, partial, 3, RankingWeights())
        assert first_sentence(answer) == expected
        for passage in answer.passages:
            for span in passage.highlights:
                assert passage.text[span.start:span.end] in {
                    corpus_index.sentence_text(i) for i in range(n)}
    lighthouse = rank(corpus_index, "When did the lighthouse open?",
                      FakeEncoder().encode(["When did the lighthouse open?"])[0], 3, RankingWeights(),
                      full_ranking_max=0)
    assert first_sentence(lighthouse) == "The lighthouse opened in 1874 and its lamp burns whale oil."


def test_candidate_ranking_keeps_the_speech_answers(real_encoder: Any) -> None:
    """On the speech, ranking only a small candidate pool changes (almost) no first answer."""
    from index import CorpusIndex
    from ingest import default_documents
    from qa.question import clean_question

    index = CorpusIndex.build(default_documents(), real_encoder)
    texts = [clean_question(q) for q, _ in SPEECH_QUESTIONS]
    vectors, tokens = real_encoder.encode_with_tokens(texts)
    same = 0
    for text, vector, token in zip(texts, vectors, tokens, strict=True):
        full = score_sentences(index, text, vector, RankingWeights(), token)
        partial = score_sentences(index, text, vector, RankingWeights(), token, full_ranking_max=0,
                                  pool=SMALL_POOL)
        assert partial.ids.size < len(index.sentences)
        same += first_sentence(answer_from_scores(index, text, full, 3, RankingWeights())) == \
            first_sentence(answer_from_scores(index, text, partial, 3, RankingWeights()))
    assert same >= len(SPEECH_QUESTIONS) - 2, f"{same} of {len(SPEECH_QUESTIONS)} first answers kept"
