"""Index: build, save/load round trip (non-ASCII), validation on load, the default cache."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from index import CorpusIndex, IndexBuildError, IndexLoadError, cached_index
from index.cache import cache_key
from index.store import FORMAT_VERSION
from ingest import ChunkingParams, Document, default_documents

NON_ASCII = Document(
    "unicode.txt", "unicode.txt",
    "Zürich hosted the “Grüne Stadt” forum in 2003. 大连 sent a delegation of twelve.\n\n"
    "The mayor — Ms. Ødegaard — spoke about naïve café policies. Emoji 🌏 stay intact.",
)


def _build(encoder, documents=None, params=None) -> CorpusIndex:  # type: ignore[no-untyped-def]
    return CorpusIndex.build(documents or [NON_ASCII, *default_documents()], encoder, params)


def test_round_trip_keeps_everything(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    built = _build(fake_encoder)
    built.save(tmp_path / "idx")
    loaded = CorpusIndex.load(tmp_path / "idx", expected_model=fake_encoder.name)
    assert loaded.documents == built.documents
    assert loaded.sentences == built.sentences
    assert loaded.passages == built.passages
    np.testing.assert_array_equal(loaded.sentence_vectors, built.sentence_vectors)
    np.testing.assert_array_equal(loaded.passage_vectors, built.passage_vectors)
    assert loaded.manifest["counts"] == built.manifest["counts"]
    assert "Zürich hosted the “Grüne Stadt” forum in 2003." in \
        [loaded.sentence_text(i) for i in range(len(loaded.sentences))]
    assert "大连 sent a delegation of twelve." in \
        [loaded.sentence_text(i) for i in range(len(loaded.sentences))]
    question = fake_encoder.encode(["café policies"])[0]
    assert np.allclose(loaded.passage_vectors @ question, built.passage_vectors @ question)
    from index import tokenize

    tokens = tokenize(["Zürich café"])[0]
    np.testing.assert_allclose(loaded.sentence_bm25.scores(tokens), built.sentence_bm25.scores(tokens))


def test_every_span_slices_back(fake_encoder) -> None:  # type: ignore[no-untyped-def]
    built = _build(fake_encoder)
    for passage in built.passages:
        text = built.passage_text(built.passages.index(passage))
        assert text == built.documents[passage.doc].text[passage.start:passage.end]
        for sentence_id in range(passage.first, passage.last + 1):
            assert built.sentence_text(sentence_id) in text


def test_manifest_records_what_load_checks(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    _build(fake_encoder).save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 3
    assert manifest["model"] == {"name": "fake-hashing-encoder", "dimension": 64}
    assert manifest["chunking"] == {"sentences_per_passage": ChunkingParams().sentences_per_passage,
                                    "overlap": ChunkingParams().overlap,
                                    "max_chars": ChunkingParams().max_chars}
    assert set(manifest["counts"]) == {"documents", "sentences", "passages"}
    assert "passages.faiss" in manifest["files"] and "sentences.jsonl" in manifest["files"]
    assert not any(name.endswith((".pkl", ".pickle", ".joblib")) for name in manifest["files"])


def test_other_model_is_refused(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    _build(fake_encoder).save(tmp_path / "idx")
    with pytest.raises(IndexLoadError, match="built with model 'fake-hashing-encoder'"):
        CorpusIndex.load(tmp_path / "idx", expected_model="sentence-transformers/all-MiniLM-L6-v2")


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "manifest.json").unlink(), "manifest.json: missing"),
        (lambda d: (d / "manifest.json").write_text("{not json"), "manifest.json: not valid JSON"),
        (lambda d: (d / "manifest.json").write_text('{"name": "someone else"}'),
         "not a speech-qa index manifest"),
        (lambda d: _edit_manifest(d, format_version=99), "format version 99"),
        (lambda d: (d / "passages.faiss").write_bytes((d / "passages.faiss").read_bytes()[:100]),
         "passages.faiss: corrupt"),
        (lambda d: (d / "sentences.jsonl").write_text("{}\n"), "sentences.jsonl: corrupt"),
    ],
)
def test_damaged_index_is_refused_with_the_file_named(tmp_path: Path, fake_encoder, damage,  # type: ignore[no-untyped-def]
                                                      message: str) -> None:
    _build(fake_encoder).save(tmp_path / "idx")
    damage(tmp_path / "idx")
    with pytest.raises(IndexLoadError, match=message):
        CorpusIndex.load(tmp_path / "idx")


def _edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


def test_missing_index_dir(tmp_path: Path) -> None:
    with pytest.raises(IndexLoadError, match="no index directory here"):
        CorpusIndex.load(tmp_path / "nothing")


def test_save_never_replaces_a_foreign_directory(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    precious = tmp_path / "notes"
    precious.mkdir()
    (precious / "thesis.txt").write_text("years of work")
    with pytest.raises(IndexBuildError, match="not a speech-qa index; refusing"):
        _build(fake_encoder).save(precious)
    assert (precious / "thesis.txt").read_text() == "years of work"


def test_failed_save_keeps_the_previous_index(tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "idx"
    first = _build(fake_encoder, [NON_ASCII])
    first.save(target)
    second = _build(fake_encoder)

    def explode(self, folder):  # type: ignore[no-untyped-def]
        (folder / "partial.bin").write_bytes(b"half")
        raise OSError("disk full")

    monkeypatch.setattr(CorpusIndex, "_write_files", explode)
    with pytest.raises(IndexBuildError, match="disk full"):
        second.save(target)
    monkeypatch.undo()
    reloaded = CorpusIndex.load(target)
    assert reloaded.documents == first.documents
    assert [p.name for p in tmp_path.iterdir()] == ["idx"]  # no temp dirs left behind


def test_interrupted_rename_is_recovered(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "idx"
    _build(fake_encoder, [NON_ASCII]).save(target)
    target.rename(tmp_path / "idx.previous")  # as if killed between save's two renames
    assert CorpusIndex.load(target).documents[0].doc_id == "unicode.txt"


def test_cache_rebuilds_when_the_key_changes(tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPEECH_QA_CACHE_DIR", str(tmp_path))
    documents = default_documents()
    first = cached_index(documents, fake_encoder)
    folders = sorted(p.name for p in tmp_path.iterdir())
    key = cache_key(documents, fake_encoder.name, ChunkingParams())
    assert folders == [f"default-{key}"]
    again = cached_index(documents, fake_encoder)
    assert again.manifest["created_at"] == first.manifest["created_at"]  # loaded, not rebuilt
    cached_index(documents, fake_encoder, ChunkingParams(sentences_per_passage=2))
    assert len(list(tmp_path.iterdir())) == 2  # new parameters: new key, new index
    changed = [Document("dalian_speech.txt", "dalian_speech.txt", documents[0].text + " Extra.")]
    assert cache_key(changed, fake_encoder.name, ChunkingParams()) != folders[0].split("-", 1)[1]


def test_corrupt_cache_is_rebuilt(tmp_path: Path, fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SPEECH_QA_CACHE_DIR", str(tmp_path))
    documents = default_documents()
    cached_index(documents, fake_encoder)
    (folder,) = tmp_path.iterdir()
    (folder / "passages.faiss").write_bytes(b"garbage")
    rebuilt = cached_index(documents, fake_encoder)
    assert len(rebuilt.passages) > 0
    CorpusIndex.load(folder)  # valid again


class _TokenFake:
    """The fake encoder plus token vectors (one per word), like the bundled model's."""

    def __init__(self, inner) -> None:  # type: ignore[no-untyped-def]
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension

    def encode(self, texts: list[str], *, batch_size: int = 64,
               show_progress: bool = False) -> np.ndarray:
        return np.asarray(self.inner.encode(texts))

    def encode_with_tokens(self, texts: list[str], *, batch_size: int = 64,
                           show_progress: bool = False) -> tuple[np.ndarray, list[np.ndarray]]:
        tokens = [np.asarray(self.inner.encode(text.split() or ["."])) for text in texts]
        return self.encode(texts), tokens


def test_token_vectors_round_trip(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from index.store import TOKEN_OFFSETS_FILE, TOKENS_FILE

    built = _build(_TokenFake(fake_encoder))
    assert built.manifest["late_interaction"] is True
    assert built.sentence_tokens is not None and built.sentence_token_offsets is not None
    assert built.sentence_tokens.dtype == np.float16
    assert built.sentence_token_offsets.shape == (len(built.sentences) + 1,)
    first = built.sentence_tokens[built.sentence_token_offsets[0]:built.sentence_token_offsets[1]]
    assert len(first) == len(built.sentence_text(0).split())
    built.save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    assert {TOKENS_FILE, TOKEN_OFFSETS_FILE} <= set(manifest["files"])
    loaded = CorpusIndex.load(tmp_path / "idx")
    np.testing.assert_array_equal(loaded.sentence_tokens, built.sentence_tokens)  # type: ignore[arg-type]
    np.testing.assert_array_equal(loaded.sentence_token_offsets, built.sentence_token_offsets)  # type: ignore[arg-type]


def test_no_token_vectors_without_the_capability_or_for_big_corpora(
        fake_encoder, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    plain = _build(fake_encoder)
    assert plain.manifest["late_interaction"] is False and plain.sentence_tokens is None
    import index.build

    monkeypatch.setattr(index.build, "LATE_INTERACTION_MAX_SENTENCES", 5)
    big = _build(_TokenFake(fake_encoder))
    assert big.manifest["late_interaction"] is False and big.sentence_tokens is None


def _rewrite_array(folder: Path, name: str, array: np.ndarray) -> None:
    """Replace one array and re-sign it in the manifest (so validation, not the hash, fires)."""
    import hashlib

    np.save(folder / name, array, allow_pickle=False)
    _edit_manifest(folder, files={**json.loads((folder / "manifest.json").read_text())["files"],
                                  name: hashlib.sha256((folder / name).read_bytes()).hexdigest()})


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d, t, o: _rewrite_array(d, "sentence_token_offsets.npy", o[:-1]),
         "sentence_token_offsets.npy: expected int64"),
        (lambda d, t, o: _rewrite_array(d, "sentence_token_offsets.npy", o[::-1].copy()),
         "sentence_token_offsets.npy: offsets do not cover"),
        (lambda d, t, o: _rewrite_array(d, "sentence_tokens.npy", t[:, :3]),
         "sentence_tokens.npy: expected float16"),
        (lambda d, t, o: _rewrite_array(d, "sentence_tokens.npy", t.astype(np.float32)),
         "sentence_tokens.npy: expected float16"),
        (lambda d, t, o: (d / "sentence_tokens.npy").write_bytes(b"not numpy"),
         "sentence_tokens.npy: corrupt"),
    ],
)
def test_damaged_token_files_are_refused_with_the_file_named(
        tmp_path: Path, fake_encoder, damage, message: str) -> None:  # type: ignore[no-untyped-def]
    built = _build(_TokenFake(fake_encoder))
    built.save(tmp_path / "idx")
    damage(tmp_path / "idx", built.sentence_tokens, built.sentence_token_offsets)
    with pytest.raises(IndexLoadError, match=message):
        CorpusIndex.load(tmp_path / "idx")


def test_index_without_token_files_still_loads(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """An index written before late interaction (no flag, no files) loads with it off."""
    _build(fake_encoder).save(tmp_path / "idx")
    manifest = json.loads((tmp_path / "idx" / "manifest.json").read_text())
    del manifest["late_interaction"]
    (tmp_path / "idx" / "manifest.json").write_text(json.dumps(manifest))
    loaded = CorpusIndex.load(tmp_path / "idx")
    assert loaded.sentence_tokens is None and loaded.sentence_token_offsets is None


def test_concurrent_saves_to_one_target_leave_a_loadable_index(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """Two saves at once (e.g. two ``speech-qa index`` runs) must not delete each other's work."""
    import threading

    built = [_build(fake_encoder, [NON_ASCII]), _build(fake_encoder)]
    target = tmp_path / "idx"
    errors: list[BaseException] = []

    def save(which: int) -> None:
        try:
            for _ in range(5):
                built[which].save(target)
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=save, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    loaded = CorpusIndex.load(target)
    assert loaded.documents in (built[0].documents, built[1].documents)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]


def test_boolean_format_version_is_refused(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    _build(fake_encoder).save(tmp_path / "idx")
    _edit_manifest(tmp_path / "idx", format_version=True)
    with pytest.raises(IndexLoadError, match="format version True"):
        CorpusIndex.load(tmp_path / "idx")


PAGED = Document(
    "energy.pdf", "energy.pdf",
    "The wind farm produces 300 megawatts. It opened in 2010.\n\nLake Brennan holds water. It is deep.",
    page_starts=(0, 38, 58),
)


def _rewrite_documents(folder: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Edit every row of documents.jsonl and re-sign it (so validation, not the hash, fires)."""
    path = folder / "documents.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    path.write_text("".join(json.dumps(edit(row), ensure_ascii=False) + "\n" for row in rows),
                    encoding="utf-8")
    _edit_manifest(folder, files={**json.loads((folder / "manifest.json").read_text())["files"],
                                  "documents.jsonl": hashlib.sha256(path.read_bytes()).hexdigest()})


def test_page_starts_round_trip(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    built = _build(fake_encoder, [PAGED, NON_ASCII])
    built.save(tmp_path / "idx")
    loaded = CorpusIndex.load(tmp_path / "idx")
    assert loaded.documents == built.documents
    assert loaded.documents[0].page_starts == (0, 38, 58) and loaded.documents[1].page_starts == ()
    rows = [json.loads(line) for line in (tmp_path / "idx" / "documents.jsonl").read_text().splitlines()]
    assert "page_starts" in rows[0] and "page_starts" not in rows[1]  # unpaged rows keep the old shape
    assert [loaded.documents[r.doc].page_of(r.start) for r in loaded.passages] == [1, 3, None, None]


def test_index_without_page_starts_still_loads(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    """A documents table written before pages were recorded loads, with no pages."""
    _build(fake_encoder, [PAGED]).save(tmp_path / "idx")
    _rewrite_documents(tmp_path / "idx", lambda row: {k: v for k, v in row.items() if k != "page_starts"})
    loaded = CorpusIndex.load(tmp_path / "idx")
    assert loaded.documents[0].page_starts == ()
    assert loaded.documents[0].page_of(40) is None


@pytest.mark.parametrize("bad", [[], [0, True], [0, 1.5], "0,38", [0, 58, 38], [0, 10_000], [-1, 0], None])
def test_bad_page_starts_are_refused(tmp_path: Path, fake_encoder, bad) -> None:  # type: ignore[no-untyped-def]
    _build(fake_encoder, [PAGED]).save(tmp_path / "idx")
    _rewrite_documents(tmp_path / "idx", lambda row: {**row, "page_starts": bad})
    with pytest.raises(IndexLoadError, match=r"documents\.jsonl: row 1 has bad page_starts"):
        CorpusIndex.load(tmp_path / "idx")


def test_old_index_without_pages_answers_with_page_none(tmp_path: Path, fake_encoder) -> None:  # type: ignore[no-untyped-def]
    from qa import QA

    _build(fake_encoder, [PAGED]).save(tmp_path / "idx")
    _rewrite_documents(tmp_path / "idx", lambda row: {k: v for k, v in row.items() if k != "page_starts"})
    answer = QA.load(tmp_path / "idx", encoder=fake_encoder).ask("How much does the wind farm produce?")
    assert answer.passages and all(p.page is None for p in answer.passages)
    fresh = tmp_path / "fresh"
    _build(fake_encoder, [PAGED]).save(fresh)
    assert QA.load(fresh, encoder=fake_encoder).ask("How deep is Lake Brennan?").passages[0].page == 3
