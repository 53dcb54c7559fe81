"""Sentence-in-context token rows (index format 3) and the ranking's use of them.

A sentence that follows another in its paragraph stores, after its own token rows, one zero
row and the rows of the two sentences encoded together; the ranking's ``pair_maxsim``
reads those, and an index without them (format 2) ranks with the weights fitted without it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from index import CorpusIndex
from index.context import own_ends, previous_in_paragraph, separator_rows
from index.records import SentenceRecord
from ingest import ChunkingParams, Document, default_documents
from qa.layered import StackedRows
from qa.ranking import (
    FEATURES,
    WITHOUT_CONTEXT_ROWS,
    RankingWeights,
    _own_ends,
    context_interaction,
    has_context_rows,
    late_interaction,
    rank,
    score_sentences,
)

TEXT = ("Harbour notes\n\n"
        "The Zorbland lighthouse was painted teal in 1887. It stands on the northern cliffs.\n\n"
        "The harbour silted up in 1920. This project of dredging ended in 1954. Boats came back.")


class WordTokens:
    """The fake encoder plus token vectors, one per word (as the bundled model gives per token)."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.calls: list[list[str]] = []

    def encode(self, texts: list[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        return np.asarray(self.inner.encode(texts))

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        self.calls.append(list(texts))
        return self.encode(texts), [np.asarray(self.inner.encode(t.split())) for t in texts]


def _build(encoder: object) -> CorpusIndex:
    return CorpusIndex.build([Document("notes.txt", "notes.txt", TEXT)], encoder, ChunkingParams())  # type: ignore[arg-type]


def _format_2(index: CorpusIndex) -> CorpusIndex:
    """The same index with its context rows dropped, as a format 2 build stored it."""
    assert index.sentence_tokens is not None and index.sentence_token_offsets is not None
    ends = own_ends(index.sentence_tokens, index.sentence_token_offsets)
    starts = index.sentence_token_offsets[:-1]
    blocks = [index.sentence_tokens[a:b] for a, b in zip(starts, ends, strict=True)]
    offsets = np.zeros(len(blocks) + 1, dtype=np.int64)
    np.cumsum([len(b) for b in blocks], out=offsets[1:])
    return CorpusIndex(index.documents, index.sentences, index.passages, index.sentence_index,
                       index.passage_index, index.sentence_bm25, index.passage_bm25, dict(index.manifest),
                       np.concatenate(blocks), offsets)


def test_previous_in_paragraph_stops_at_paragraphs_and_documents() -> None:
    sentences = [SentenceRecord(0, 0, 1, 0), SentenceRecord(0, 2, 3, 1), SentenceRecord(0, 4, 5, 1),
                 SentenceRecord(1, 0, 1, 1), SentenceRecord(1, 2, 3, 1)]
    assert previous_in_paragraph(sentences) == [-1, -1, 1, -1, 3]


def test_a_following_sentence_stores_a_zero_row_then_the_pair(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    encoder = WordTokens(fake_encoder)
    built = _build(encoder)
    tokens, offsets = built.sentence_tokens, built.sentence_token_offsets
    assert tokens is not None and offsets is not None
    texts = [built.sentence_text(i) for i in range(len(built.sentences))]
    follows = [i for i in range(1, len(texts))
               if built.sentences[i].paragraph == built.sentences[i - 1].paragraph]
    assert follows, "the fixture must have sentences that follow another"
    for i, text in enumerate(texts):
        block = tokens[offsets[i]:offsets[i + 1]].astype(np.float32)
        own = np.asarray(fake_encoder.encode(text.split()), dtype=np.float16).astype(np.float32)
        np.testing.assert_array_equal(block[:len(own)], own)
        if i in follows:  # own rows, one zero row, then both sentences read together
            pair = f"{texts[i - 1]} {text}".split()
            assert len(block) == len(own) + 1 + len(pair)
            assert not block[len(own)].any()
            expected = np.asarray(fake_encoder.encode(pair), dtype=np.float16).astype(np.float32)
            np.testing.assert_array_equal(block[len(own) + 1:], expected)
        else:
            assert len(block) == len(own)
    assert has_context_rows(built)
    ends = _own_ends(built)
    assert [i for i in range(len(texts)) if ends[i] < offsets[i + 1]] == follows


def test_context_rows_survive_save_and_load_and_the_format_is_3(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    built = _build(WordTokens(fake_encoder))
    built.save(tmp_path / "idx")
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["format_version"] == 3
    loaded = CorpusIndex.load(tmp_path / "idx")
    np.testing.assert_array_equal(loaded.sentence_tokens, built.sentence_tokens)  # type: ignore[arg-type]
    assert has_context_rows(loaded)


def test_separators_are_found_across_stacked_parts() -> None:
    rng = np.random.default_rng(0)
    whole = rng.normal(size=(12, 4)).astype(np.float16)
    whole[[2, 9]] = 0
    stacked = StackedRows([whole[:5], whole[5:]])
    np.testing.assert_array_equal(separator_rows(stacked), [2, 9])
    np.testing.assert_array_equal(separator_rows(whole), [2, 9])
    offsets = np.array([0, 4, 7, 12])
    np.testing.assert_array_equal(own_ends(stacked, offsets), [2, 7, 9])


def test_a_format_2_index_ranks_with_the_weights_fitted_without_context(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    built = _build(WordTokens(fake_encoder))
    old = _format_2(built)
    assert not has_context_rows(old)
    question = "When was the harbour dredged?"
    vector = np.asarray(fake_encoder.encode([question]))[0]
    tokens = np.asarray(fake_encoder.encode(question.split()))
    shipped = rank(old, question, vector, 3, RankingWeights(), tokens)
    explicit = rank(old, question, vector, 3, WITHOUT_CONTEXT_ROWS, tokens)
    assert shipped == explicit
    # Own-row MaxSim is the same whether or not context rows follow.
    everyone = np.arange(len(built.sentences))
    np.testing.assert_allclose(late_interaction(built, tokens, everyone),  # type: ignore[arg-type]
                               late_interaction(old, tokens, everyone), atol=1e-6)  # type: ignore[arg-type]


def test_the_pair_reading_carries_the_previous_sentence_real_model(real_encoder) -> None:  # type: ignore[no-untyped-def]
    """"This project" is completed in one sentence and named in the one before it: a question
    naming the project matches the pair reading better than the sentence read alone."""
    index = CorpusIndex.build(default_documents(), real_encoder, ChunkingParams())
    texts = [index.sentence_text(i) for i in range(len(index.sentences))]
    target = next(i for i, t in enumerate(texts) if t.startswith("From the end of 1996 to March 2000"))
    question = "How long did the JICA-assisted development of the environmental model zone take?"
    _, question_tokens = real_encoder.encode_with_tokens([question])
    candidates = np.array([target])
    alone = late_interaction(index, question_tokens[0], candidates)
    together = context_interaction(index, question_tokens[0], candidates)
    assert alone is not None and together is not None
    assert together[0] > alone[0] + 0.02


def test_whole_table_and_gathered_maxsim_agree(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """All sentences at once (one product over the whole table) equals one at a time (gathered)."""
    built = _build(WordTokens(fake_encoder))
    tokens = np.asarray(fake_encoder.encode(["When", "was", "the", "harbour", "dredged"]))
    everyone = np.arange(len(built.sentences))
    for score in (late_interaction, context_interaction):
        together = score(built, tokens, everyone)
        alone = [score(built, tokens, np.array([i])) for i in everyone]
        assert together is not None and all(a is not None for a in alone)
        np.testing.assert_allclose(together, [a[0] for a in alone], atol=1e-6)  # type: ignore[index]


def test_adding_to_a_format_2_index_writes_format_3_and_mixes_cleanly(
        tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """An index from before format 3 keeps its blocks; ``add`` gives the new file context rows and
    marks the index format 3, so an older program refuses it instead of misreading the blocks."""
    from index.collection import add_to_index

    encoder = WordTokens(fake_encoder)
    _format_2(_build(encoder)).save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    manifest["format_version"] = 2
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    old = CorpusIndex.load(tmp_path / "idx")
    assert not has_context_rows(old)

    add_to_index(tmp_path / "idx", [Document("more.txt", "more.txt", "Ferries leave daily. They are full.")],
                 encoder)  # type: ignore[arg-type]
    assert json.loads((tmp_path / "idx" / "manifest.json").read_text())["format_version"] == 3
    mixed = CorpusIndex.load(tmp_path / "idx")
    offsets = mixed.sentence_token_offsets
    assert offsets is not None
    ends = _own_ends(mixed)
    with_pairs = [mixed.sentence_text(i) for i in range(len(mixed.sentences)) if ends[i] < offsets[i + 1]]
    assert with_pairs == ["They are full."]


def test_typed_pair_z_is_the_pair_z_score_of_sentences_holding_the_asked_type(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """A *when* question: the sentences with a year carry their in-context z-score in
    ``typed_pair_z``, the others 0; a *why* question (no typed answer) leaves it at 0, and so
    does an index without context rows."""
    built = _build(WordTokens(fake_encoder))
    texts = [built.sentence_text(i) for i in range(len(built.sentences))]
    column = FEATURES.index("typed_pair_z")

    def features(index: CorpusIndex, question: str) -> np.ndarray:
        vector = np.asarray(fake_encoder.encode([question]))[0]
        tokens = np.asarray(fake_encoder.encode(question.split()))
        return score_sentences(index, question, vector, RankingWeights(), tokens).features

    dated = np.array([any(year in t for year in ("1887", "1920", "1954")) for t in texts])
    assert dated.any() and not dated.all()
    when = features(built, "When was the harbour dredged?")
    np.testing.assert_array_equal(when[dated, column], when[dated, column - 1])
    assert (when[~dated, column] == 0).all() and (when[dated, column] != 0).any()
    assert (features(built, "Why was the harbour dredged?")[:, column] == 0).all()
    assert (features(_format_2(built), "When was the harbour dredged?")[:, column] == 0).all()
