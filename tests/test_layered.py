"""Uploads layered over a shared index rank exactly like one index built over both.

The layered corpus embeds only the uploads; these tests hold it to "the same ranking and
confidence as a single index": the same tables, BM25 statistics over the union, and the
same answers, passages and confidences (within float tolerance) for every question, with
every sentence scored and with the candidate ranking of big corpora.
"""

from __future__ import annotations

import numpy as np
import pytest

from index import CorpusIndex
from ingest import Document, default_documents
from qa import QA
from qa.layered import base_words, chunking_of, index_document, late_interaction_fits, layer, split_document
from qa.ranking import RankingWeights, rank

LIGHTHOUSE = Document("lighthouse.txt", "lighthouse.txt", (
    "Harbour notes\n\n"
    "The Zorbland lighthouse was painted teal in 1887 by its keeper, Ana Vell. "
    "It stands on the northern cliffs above the old fishing harbour.\n\n"
    "The harbour itself silted up in 1920 and was dredged again in 1954. "
    "Dalian also has a harbour, which the speech mentions only in passing."))
TRAMS = Document("trams.md", "trams.md", (
    "The Varnel tram museum keeps eleven restored trams. The oldest tram dates from 1899. "
    "Visitors may ride the 1925 tram on Sundays.\n\nEnvironmental protection matters to the "
    "museum too: its roof carries solar panels installed in 2019."))

QUESTIONS = [
    "When did Dalian receive the Global 500 award?",
    "What colour was the Zorbland lighthouse painted?",
    "How many trams does the Varnel museum keep?",
    "When was the harbour dredged?",
    "Who proposed the Dalian Environmental Model Zone?",
    "What is on the museum roof?",
    "How is the weather on Mars?",
]


def layered_and_single(encoder: object) -> tuple[CorpusIndex, CorpusIndex]:
    base = CorpusIndex.build(default_documents(), encoder)  # type: ignore[arg-type]
    params = chunking_of(base)
    pieces = []
    for document in (LIGHTHOUSE, TRAMS):
        extra = sum(len(p.sentences) for p in pieces)
        split = split_document(document, params)
        pieces.append(index_document(split, encoder,  # type: ignore[arg-type]
                                     with_tokens=late_interaction_fits(base, extra + len(split.sentences))))
    single = CorpusIndex.build([*base.documents, LIGHTHOUSE, TRAMS], encoder)  # type: ignore[arg-type]
    return layer(base, pieces), single


def assert_same_tables(layered: CorpusIndex, single: CorpusIndex) -> None:
    assert [d.source for d in layered.documents] == [d.source for d in single.documents]
    assert layered.sentences == single.sentences
    assert layered.passages == single.passages
    assert np.array_equal(layered.sentence_passage, single.sentence_passage)
    np.testing.assert_allclose(layered.sentence_vectors, single.sentence_vectors, atol=1e-5)
    np.testing.assert_allclose(layered.passage_vectors, single.passage_vectors, atol=1e-5)
    for word in ["harbour", "dalian", "tram", "environment", "protect", "1954"]:
        np.testing.assert_allclose(layered.sentence_bm25.scores([word]), single.sentence_bm25.scores([word]),
                                   rtol=1e-5)
        np.testing.assert_allclose(layered.passage_bm25.scores([word]), single.passage_bm25.scores([word]),
                                   rtol=1e-5)
    assert (layered.sentence_tokens is None) == (single.sentence_tokens is None)
    if single.sentence_tokens is not None:
        assert np.array_equal(layered.sentence_token_offsets, single.sentence_token_offsets)
        np.testing.assert_allclose(layered.sentence_tokens.astype(np.float32),
                                   single.sentence_tokens.astype(np.float32), atol=2e-3)
        rows = np.array([0, 5, len(single.sentence_tokens) - 1, 3])
        np.testing.assert_allclose(layered.sentence_tokens[rows].astype(np.float32),
                                   single.sentence_tokens[rows].astype(np.float32), atol=2e-3)


def assert_same_answers(layered: CorpusIndex, single: CorpusIndex, encoder: object,
                        full_ranking_max: int) -> None:
    from index.encoder import token_encoder

    tokens_from = token_encoder(encoder)
    for question in QUESTIONS:
        if tokens_from is not None and single.sentence_tokens is not None:
            vectors, tokens = tokens_from.encode_with_tokens([question])
            question_tokens = tokens[0]
        else:
            vectors, question_tokens = encoder.encode([question]), None  # type: ignore[attr-defined]
        got = rank(layered, question, vectors[0], 5, RankingWeights(), question_tokens, full_ranking_max)
        want = rank(single, question, vectors[0], 5, RankingWeights(), question_tokens, full_ranking_max)
        assert got.answer == want.answer, question
        assert got.confidence == pytest.approx(want.confidence, abs=1e-4), question
        assert [(p.source, p.start, p.end, p.highlights) for p in got.passages] == \
               [(p.source, p.start, p.end, p.highlights) for p in want.passages], question
        assert [p.score for p in got.passages] == pytest.approx([p.score for p in want.passages], abs=1e-4)


def test_layered_tables_equal_one_index_fake_encoder(fake_encoder: object) -> None:
    layered, single = layered_and_single(fake_encoder)
    assert_same_tables(layered, single)
    assert layered.manifest["counts"] == single.manifest["counts"]
    assert layered.manifest["corpus_hash"] == single.manifest["corpus_hash"]


@pytest.mark.parametrize("full_ranking_max", [5_000, 10])  # every sentence; candidates only
def test_layered_answers_equal_one_index_fake_encoder(fake_encoder: object, full_ranking_max: int) -> None:
    layered, single = layered_and_single(fake_encoder)
    assert_same_answers(layered, single, fake_encoder, full_ranking_max)


@pytest.mark.parametrize("full_ranking_max", [5_000, 10])
def test_layered_answers_equal_one_index_real_model(real_encoder: object, full_ranking_max: int) -> None:
    """The product's model, with late interaction (token vectors) over the union."""
    layered, single = layered_and_single(real_encoder)
    assert layered.sentence_tokens is not None
    assert_same_tables(layered, single)
    assert_same_answers(layered, single, real_encoder, full_ranking_max)
    answer = rank(layered, QUESTIONS[1], real_encoder.encode([QUESTIONS[1]])[0], 3,  # type: ignore[attr-defined]
                  RankingWeights())
    assert answer.passages[0].source == "lighthouse.txt"


def test_base_terms_are_shared_not_copied(fake_encoder: object) -> None:
    base = CorpusIndex.build(default_documents(), fake_encoder)  # type: ignore[arg-type]
    terms = base_words(base)
    piece = index_document(split_document(LIGHTHOUSE, chunking_of(base)), fake_encoder,  # type: ignore[arg-type]
                           with_tokens=False)
    first, second = layer(base, [piece]), layer(base, [piece])
    assert base_words(base) is terms
    assert first.sentence_bm25.blocks[0] is terms.sentences is second.sentence_bm25.blocks[0]  # type: ignore[attr-defined]


def test_union_bm25_equals_bm25s_over_the_concatenation() -> None:
    from index import tokenize
    from index.lexical import LexicalIndex, TermPostings, UnionLexicalIndex

    texts = ["The harbour was dredged in 1954.", "", "Harbour harbour harbour, said the keeper.",
             "Trams run on Sundays.", "The keeper painted the lighthouse teal.", "Sundays are quiet."]
    tokens = tokenize(texts)
    single = LexicalIndex.build(texts)
    union = UnionLexicalIndex([TermPostings(tokens[:2]), TermPostings([]), TermPostings(tokens[2:])])
    for query in (["harbour"], ["keeper", "teal"], ["sunday"], ["unknown"], ["harbour", "harbour"], []):
        np.testing.assert_allclose(union.scores(query), single.scores(query), rtol=1e-6, atol=1e-7)


def test_the_shared_index_is_never_re_embedded(fake_encoder: object) -> None:
    """Only the upload's own texts reach the model."""
    base = CorpusIndex.build(default_documents(), fake_encoder)  # type: ignore[arg-type]
    seen: list[str] = []

    class Counting:
        name, dimension = fake_encoder.name, fake_encoder.dimension  # type: ignore[attr-defined]

        def encode(self, texts: list[str], **_: object) -> np.ndarray:
            seen.extend(texts)
            return fake_encoder.encode(texts)  # type: ignore[attr-defined]

    piece = index_document(split_document(LIGHTHOUSE, chunking_of(base)), Counting(),  # type: ignore[arg-type]
                           with_tokens=False)
    merged = layer(base, [piece])
    assert seen and all(text in LIGHTHOUSE.text for text in seen)
    engine = QA(lambda: merged, fake_encoder)  # type: ignore[arg-type]
    answer = engine.ask("What colour was the Zorbland lighthouse painted?")
    assert answer.passages[0].source == "lighthouse.txt"


def test_pieces_share_the_union_rows_and_layer_again_identically(fake_encoder: object) -> None:
    """After layering, a session keeps one copy of its vectors (views into the union)."""
    from qa.layered import share_rows

    base = CorpusIndex.build(default_documents(), fake_encoder)  # type: ignore[arg-type]
    params = chunking_of(base)
    pieces = [index_document(split_document(d, params), fake_encoder, with_tokens=False)  # type: ignore[arg-type]
              for d in (LIGHTHOUSE, TRAMS)]
    merged = layer(base, pieces)
    shared = share_rows(base, pieces, merged)
    for own, view in zip(pieces, shared, strict=True):
        assert np.array_equal(own.sentence_vectors, view.sentence_vectors)
        assert np.array_equal(own.passage_vectors, view.passage_vectors)
        assert np.shares_memory(view.sentence_vectors, merged.sentence_vectors)
    again = layer(base, shared)
    np.testing.assert_array_equal(again.sentence_vectors, merged.sentence_vectors)
    np.testing.assert_array_equal(again.passage_vectors, merged.passage_vectors)


def test_stacked_rows_read_like_one_array() -> None:
    from qa.layered import StackedRows

    parts = [np.arange(12, dtype=np.float16).reshape(4, 3), np.zeros((0, 3), dtype=np.float16),
             np.arange(12, 18, dtype=np.float16).reshape(2, 3)]
    whole = np.concatenate(parts)
    stacked = StackedRows(parts)
    assert len(stacked) == 6 and stacked.size == whole.size and stacked.dtype == whole.dtype
    for rows in (np.array([5, 0, 3, 4, 4]), np.array([], dtype=np.int64), slice(1, 5), np.array([-1])):
        assert np.array_equal(stacked[rows], whole[rows])
    assert np.array_equal(stacked.astype(np.float32), whole.astype(np.float32))
    assert np.array_equal(np.asarray(stacked), whole)
    assert stacked.parts[0] is parts[0], "the parts are read in place, not copied"
