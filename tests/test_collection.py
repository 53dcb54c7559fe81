"""Collections: reading folders with a report, and add / remove / list on an index.

The promise: an index grown by ``add`` (and shrunk by ``remove``) answers exactly as an
index built in one go from the same documents; adding embeds only the new documents,
removing embeds nothing, and adding writes a new segment without touching what is on
disk.  Plumbing runs with the fake encoder; one test runs the real model end to end.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import bm25s
import faiss
import numpy as np
import pytest
from conftest import FakeEncoder

from index import CorpusIndex, IndexBuildError, IndexLoadError
from index.lexical import LexicalIndex, tokenize
from index.store import MANIFEST
from index.terms import TermStats
from ingest import Document, IngestError, default_documents, read_collection, split_sentences
from qa import QA, DocumentInfo

QUESTIONS = ["When was the harbour rebuilt?", "Which city helped Dalian?", "trees along the coast",
             "How long is the bridge?"]
HARBOUR = "The harbour of Dalian was rebuilt in 1999. Trees were planted along the coast."
BRIDGE = "The Xinghai Bay Bridge opened in 2015. The bridge is six kilometres long."


class CountingEncoder(FakeEncoder):
    """The fake encoder, remembering every text it was asked to embed."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    def encode(self, texts: list[str], *, batch_size: int = 64, show_progress: bool = False) -> np.ndarray:
        self.seen.extend(texts)
        return super().encode(texts, batch_size=batch_size, show_progress=show_progress)


def answers(engine: QA) -> list[dict[str, Any]]:
    return [engine.ask(question).to_dict() for question in QUESTIONS]


def fresh(documents: list[Document], encoder: Any) -> QA:
    index = CorpusIndex.build(documents, encoder)
    return QA(lambda: index, encoder=encoder)


@pytest.fixture
def files(tmp_path: Path) -> Path:
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "harbour.txt").write_text(HARBOUR, encoding="utf-8")
    (folder / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    return folder


def speech_file(tmp_path: Path) -> Path:
    path = tmp_path / "dalian_speech.txt"
    path.write_text(default_documents()[0].text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------- reading folders
def test_folder_report_names_every_skipped_file_with_its_reason(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.txt").write_text("Alpha text about owls.", encoding="utf-8")
    (docs / "sub" / "b.md").write_text("Beta text about bees.", encoding="utf-8")
    (docs / "same.txt").write_text("Alpha text about owls.", encoding="utf-8")
    (docs / "notes.rst").write_text("Unsupported.", encoding="utf-8")
    (docs / "table.csv").write_text("a,b", encoding="utf-8")
    (docs / "README").write_text("No extension.", encoding="utf-8")
    (docs / "broken.pdf").write_bytes(b"%PDF-1.4 truncated")
    (docs / ".hidden.txt").write_text("Hidden files stay out.", encoding="utf-8")
    (docs / "link.txt").symlink_to(docs / "a.txt")
    report = read_collection([docs, docs / "a.txt"])
    assert sorted(d.source for d in report.documents) == ["docs/a.txt", "docs/sub/b.md"]
    reasons = {Path(item.path).name: item.reason for item in report.skipped}
    assert reasons == {"notes.rst": "unsupported", "table.csv": "unsupported", "README": "unsupported",
                       "broken.pdf": "unreadable", "same.txt": "duplicate", "link.txt": "duplicate",
                       "a.txt": "duplicate"}
    assert report.partial
    assert all("\n" not in str(item) and item.detail for item in report.skipped)
    with pytest.raises(IngestError, match="unsupported file type"):
        read_collection([docs], strict=True)
    (docs / "notes.rst").unlink(), (docs / "table.csv").unlink(), (docs / "README").unlink()
    with pytest.raises(IngestError, match=r"broken\.pdf"):
        read_collection([docs], strict=True)


def test_missing_path_fails_before_anything_is_read(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="no such file or folder"):
        read_collection([tmp_path, tmp_path / "nope.txt"])


# ---------------------------------------------------------------------------- BM25 from counts
def test_bm25_from_word_counts_is_exactly_bm25s() -> None:
    text = default_documents()[0].text
    texts = [text[s.start:s.end] for s in split_sentences(text)] + ["the of and", "harbour harbour"]
    reference = bm25s.BM25()
    reference.index(tokenize(texts), show_progress=False)
    halves = TermStats.concat([TermStats.from_texts(texts[:17]), TermStats.from_texts(texts[17:])])
    for stats in (TermStats.from_texts(texts), halves, halves.subset(np.arange(len(texts)))):
        ours = stats.bm25()
        for question in ["Dalian harbour award", "green trees city", "Kitakyushu", "the"]:
            words = tokenize([question])[0]
            expected = LexicalIndex(reference, len(texts)).scores(words)
            assert np.array_equal(ours.scores(words), expected), question


# ---------------------------------------------------------------------------- add / remove
def test_add_then_remove_answer_as_a_fresh_build_and_embed_only_what_is_new(
        tmp_path: Path, files: Path) -> None:
    encoder = CountingEncoder()
    speech = speech_file(tmp_path)
    engine = QA.from_paths([speech], index_dir=tmp_path / "idx", encoder=encoder)
    encoder.seen.clear()
    report = engine.add([files / "harbour.txt", files / "bridge.txt"])
    assert report.added == ("harbour.txt", "bridge.txt") and not report.partial
    assert set(encoder.seen) <= set(split_text(HARBOUR) + split_text(BRIDGE) + [HARBOUR, BRIDGE])
    docs = read_collection([speech, files / "harbour.txt", files / "bridge.txt"]).documents
    assert answers(engine) == answers(fresh(list(docs), FakeEncoder()))
    assert answers(QA.load(tmp_path / "idx", encoder=FakeEncoder())) == answers(engine)

    encoder.seen.clear()
    removed = engine.remove(["harbour.txt"])
    assert removed.removed == ("harbour.txt",) and encoder.seen == []
    expected = fresh([docs[0], docs[2]], FakeEncoder())
    assert answers(engine) == answers(expected)
    assert answers(QA.load(tmp_path / "idx", encoder=FakeEncoder())) == answers(expected)
    assert [d.source for d in engine.documents] == ["dalian_speech.txt", "bridge.txt"]


def split_text(text: str) -> list[str]:
    return [text[s.start:s.end] for s in split_sentences(text)]


def test_add_writes_a_segment_and_never_rewrites_what_is_on_disk(tmp_path: Path, files: Path) -> None:
    target = tmp_path / "idx"
    QA.from_paths([speech_file(tmp_path)], index_dir=target, encoder=FakeEncoder())
    before = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.rglob("*")
              if p.is_file() and p.name != MANIFEST}
    QA.load(target, encoder=FakeEncoder(), lazy=True).add([files / "harbour.txt"])
    after = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in target.rglob("*")
             if p.is_file() and p.name != MANIFEST}
    assert {p: after[p] for p in before} == before
    new = sorted(str(p.relative_to(target)) for p in set(after) - set(before))
    assert new and all(name.startswith("segments/000001-") for name in new)
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    assert [s["path"] for s in manifest["segments"]] == ["", "/".join(new[0].split("/")[:2])]
    assert manifest["counts"]["documents"] == 2
    assert not [p for p in target.rglob("*tmp*")]


def test_same_content_is_not_indexed_twice_and_a_new_version_replaces_the_old(
        tmp_path: Path, files: Path) -> None:
    target = tmp_path / "idx"
    engine = QA.from_paths([files], index_dir=target, encoder=FakeEncoder())
    copy = tmp_path / "copy.txt"
    copy.write_text(HARBOUR, encoding="utf-8")
    report = engine.add([copy])
    assert report.added == () and [(s.reason, Path(s.path).name) for s in report.skipped] == [
        ("duplicate", "copy.txt")] and not report.partial
    assert "files/harbour.txt" in report.skipped[0].detail
    changed = tmp_path / "v2" / "files"
    changed.mkdir(parents=True)
    (changed / "harbour.txt").write_text("The harbour of Dalian closed in 2030.", encoding="utf-8")
    report = engine.add([changed])
    assert report.replaced == ("files/harbour.txt",)
    sources = [d.source for d in engine.documents]
    assert sorted(sources) == ["files/bridge.txt", "files/harbour.txt"]
    answer = QA.load(target, encoder=FakeEncoder()).ask("When did the harbour close?")
    assert "2030" in (answer.answer or "") and "1999" not in " ".join(p.text for p in answer.passages)


def test_documents_are_typed_entries(tmp_path: Path, files: Path) -> None:
    engine = QA.from_paths([files], index_dir=tmp_path / "idx", encoder=FakeEncoder())
    documents = QA.load(tmp_path / "idx", encoder=FakeEncoder(), lazy=True).documents
    assert documents == engine.documents and isinstance(documents, tuple)
    bridge = next(d for d in documents if d.source == "files/bridge.txt")
    assert isinstance(bridge, DocumentInfo)
    assert (bridge.passages, bridge.sentences, bridge.size) == (1, 2, len(BRIDGE.encode()))
    assert bridge.added_at.endswith("Z") and bridge.added_at[:2] == "20"
    with pytest.raises(AttributeError):
        bridge.source = "x"  # type: ignore[misc]


def test_remove_of_an_unknown_name_changes_nothing(tmp_path: Path, files: Path) -> None:
    target = tmp_path / "idx"
    engine = QA.from_paths([files], index_dir=target, encoder=FakeEncoder())
    manifest = (target / MANIFEST).read_bytes()
    with pytest.raises(IndexBuildError, match=r"no document named 'nope\.txt'"):
        engine.remove(["files/bridge.txt", "nope.txt"])
    assert (target / MANIFEST).read_bytes() == manifest
    with pytest.raises(IndexBuildError, match="empty index"):
        engine.remove(["files/bridge.txt", "files/harbour.txt"])


def test_index_refuses_an_existing_index_and_a_foreign_folder_before_reading(
        tmp_path: Path, files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "idx"
    QA.from_paths([files], index_dir=target, encoder=FakeEncoder())
    import qa.engine

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("files were read before the cheap checks")

    monkeypatch.setattr(qa.engine, "read_collection", no_reading)
    refusal = r"already holds an index of 2 document.*speech-qa add.*--replace"
    with pytest.raises(IndexBuildError, match=refusal):
        QA.from_paths([files], index_dir=target, encoder=FakeEncoder())
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(IndexBuildError, match="not a speech-qa index"):
        QA.from_paths([files], index_dir=foreign, encoder=FakeEncoder())
    with pytest.raises(IndexLoadError, match="not a speech-qa index"):
        QA.load(foreign, encoder=FakeEncoder(), lazy=True)


def test_in_memory_add_leaves_the_serving_index_untouched(tmp_path: Path, files: Path) -> None:
    speech = default_documents()
    engine = fresh(speech, FakeEncoder())
    old_index = engine.index
    old_answers = answers(engine)
    engine.add([files / "bridge.txt"])
    assert engine.index is not old_index and len(old_index.documents) == 1
    assert answers(QA(lambda: old_index, encoder=FakeEncoder())) == old_answers
    docs = [*speech, *read_collection([files / "bridge.txt"]).documents]
    assert answers(engine) == answers(fresh(docs, FakeEncoder()))


def test_approximate_first_table_takes_added_rows_without_retraining(
        tmp_path: Path, files: Path) -> None:
    """A large first table (IVF or the fp16 scan) gets the new rows by ``add``."""
    encoder = FakeEncoder()
    speech = default_documents()
    base = CorpusIndex.build(speech, encoder, vector_threshold=10)
    kind = base.manifest["vector_indexes"]["sentences"]["kind"]
    assert kind != "flat"
    target = tmp_path / "idx"
    base.save(target)
    before = faiss.downcast_index(base.sentence_index)
    QA.load(target, encoder=encoder, lazy=True).add([files / "bridge.txt"])
    loaded = CorpusIndex.load(target)
    after = faiss.downcast_index(loaded.sentence_index)
    assert type(after) is type(before) and after.ntotal == before.ntotal + 2
    assert loaded.manifest["vector_indexes"]["sentences"]["kind"] == kind
    bridge_row = len(loaded.sentences) - 2
    assert np.allclose(loaded.sentence_vectors[bridge_row], encoder.encode(split_text(BRIDGE))[0])
    _, ids = loaded.sentence_index.search(encoder.encode(["six kilometres long bridge"]), 1)
    assert ids[0][0] == bridge_row + 1


def test_flat_table_outgrowing_its_kind_is_rewritten(tmp_path: Path, files: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import index.collection
    import index.segments

    target = tmp_path / "idx"
    QA.from_paths([speech_file(tmp_path)], index_dir=target, encoder=FakeEncoder())
    monkeypatch.setattr(index.collection, "APPROXIMATE_THRESHOLD", 40)
    monkeypatch.setattr(index.segments, "APPROXIMATE_THRESHOLD", 40)
    QA.load(target, encoder=FakeEncoder(), lazy=True).add([files / "harbour.txt"])
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    assert len(manifest["segments"]) == 1  # rewritten as one
    assert manifest["vector_indexes"]["sentences"]["kind"] != "flat"
    assert manifest["counts"]["documents"] == 2


def test_concurrent_adds_keep_both(tmp_path: Path, files: Path) -> None:
    target = tmp_path / "idx"
    QA.from_paths([speech_file(tmp_path)], index_dir=target, encoder=FakeEncoder())
    threads = [threading.Thread(target=lambda p=p: QA.load(target, encoder=FakeEncoder(), lazy=True).add([p]))
               for p in (files / "harbour.txt", files / "bridge.txt")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(d.source for d in QA.load(target, encoder=FakeEncoder()).documents) == [
        "bridge.txt", "dalian_speech.txt", "harbour.txt"]


def write_format_1(index: CorpusIndex, folder: Path) -> None:
    """Write ``index`` as the previous version did (bm25s score files, no segments)."""
    import hashlib

    folder.mkdir()
    index.write_tables(folder)
    for table, texts in (("bm25_sentences", [index.sentence_text(i) for i in range(len(index.sentences))]),
                         ("bm25_passages", [index.passage_text(i) for i in range(len(index.passages))])):
        for path in (folder / table).iterdir():
            path.unlink()
        LexicalIndex.build(texts)._model.save(str(folder / table), allow_pickle=False)
    manifest = {key: value for key, value in index.manifest.items()
                if key not in ("segments", "documents", "updated_at")}
    manifest["format_version"] = 1
    manifest["files"] = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
                         for p in sorted(folder.rglob("*")) if p.is_file()}
    (folder / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")


def test_an_index_of_format_1_loads_and_add_upgrades_it(tmp_path: Path, files: Path) -> None:
    speech = default_documents()
    built = CorpusIndex.build(speech, FakeEncoder())
    target = tmp_path / "old"
    write_format_1(built, target)
    engine = QA.load(target, encoder=FakeEncoder())
    assert answers(engine) == answers(fresh(speech, FakeEncoder()))
    assert [d.source for d in engine.documents] == ["dalian_speech.txt"]
    engine.add([files / "bridge.txt"])
    manifest = json.loads((target / MANIFEST).read_text(encoding="utf-8"))
    assert manifest["format_version"] == 3 and len(manifest["segments"]) == 1
    docs = [*speech, *read_collection([files / "bridge.txt"]).documents]
    assert answers(QA.load(target, encoder=FakeEncoder())) == answers(fresh(docs, FakeEncoder()))


def test_real_model_add_answers_as_a_fresh_build(tmp_path: Path, files: Path, real_encoder: Any) -> None:
    """The product: the speech with late interaction, one file added, the real model."""
    target = tmp_path / "idx"
    speech = speech_file(tmp_path)
    engine = QA.from_paths([speech], index_dir=target, encoder=real_encoder)
    assert engine.index.sentence_tokens is not None
    engine.add([files / "bridge.txt"])
    loaded = QA.load(target, encoder=real_encoder)
    assert loaded.index.sentence_tokens is not None
    docs = list(read_collection([speech, files / "bridge.txt"]).documents)
    expected = fresh(docs, real_encoder)
    got = answers(loaded)
    for mine, theirs in zip(got, answers(expected), strict=True):
        assert mine["answer"] == theirs["answer"]
        assert [p["text"] for p in mine["passages"]] == [p["text"] for p in theirs["passages"]]
        assert mine["confidence"] == pytest.approx(theirs["confidence"], abs=1e-3)
    assert "six kilometres" in (loaded.ask("How long is the bridge?").answer or "")
    assert os.listdir(target / "segments")
