"""The model on onnxruntime: the vectors and answers of sentence-transformers; a cache trusting nothing.

Why the real model on both runtimes: the ONNX graph is the product's query path and
sentence-transformers is the reference; equivalence is only shown by running both on real
text (the speech, and SQuAD sentences, whose vocabulary is wider).
"""

from __future__ import annotations

import json
import logging
import os
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import index.onnx_encoder
from index import BundledEncoder, OnnxEncoder
from index.onnx_cache import THREADS_ENV, cached_onnx_session, onnx_threads
from ingest import default_documents, split_sentences

ROOT = Path(__file__).resolve().parent.parent
QUESTIONS = ROOT / "bench" / "data" / "speech_questions.json"
SQUAD_ENV = "SPEECH_QA_SQUAD"
SQUAD_NAME = "squad2_dev_3articles.json"


def squad_path() -> Path | None:
    """SQuAD 2.0 dev (three articles): ``$SPEECH_QA_SQUAD``, the repo's bench data, or ../shared/bench."""
    for candidate in (os.environ.get(SQUAD_ENV), ROOT / "bench" / "data" / SQUAD_NAME,
                      ROOT.parent / "shared" / "bench" / SQUAD_NAME):
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    return None


def speech_sentences() -> list[str]:
    text = default_documents()[0].text
    return [text[s.start:s.end] for s in split_sentences(text)]


def squad_sentences(count: int = 300) -> list[str]:
    path = squad_path()
    if path is None:
        pytest.skip(f"SQuAD 2.0 dev is not here: set ${SQUAD_ENV} or put {SQUAD_NAME} in bench/data "
                    "(public: https://rajpurkar.github.io/SQuAD-explorer/, CC BY-SA 4.0)")
    data = json.loads(path.read_text(encoding="utf-8"))
    sentences = [context[s.start:s.end] for article in data["data"] for paragraph in article["paragraphs"]
                 for context in [paragraph["context"]] for s in split_sentences(context)]
    return random.Random(19).sample(sentences, min(count, len(sentences)))


@pytest.fixture(scope="module")
def torch_encoder() -> BundledEncoder:
    return BundledEncoder()


@pytest.fixture(scope="module")
def onnx_encoder() -> OnnxEncoder:
    encoder = OnnxEncoder()
    assert encoder.runtime == "onnxruntime"
    return encoder


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))


@pytest.mark.parametrize("source", ["speech", "squad"])
def test_vectors_match_sentence_transformers(source: str, onnx_encoder: OnnxEncoder,
                                             torch_encoder: BundledEncoder) -> None:
    texts = speech_sentences() if source == "speech" else squad_sentences()
    texts += ["Who?", "?!", "a " * 400]  # shortest, punctuation only, truncated at 256 tokens
    onnx_vectors = onnx_encoder.encode(texts)
    torch_vectors = torch_encoder.encode(texts)
    assert onnx_vectors.shape == torch_vectors.shape == (len(texts), 384)
    assert onnx_vectors.dtype == np.float32
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    assert np.allclose(np.linalg.norm(onnx_vectors, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("source", ["speech", "squad"])
def test_token_vectors_match_sentence_transformers(source: str, onnx_encoder: OnnxEncoder,
                                                   torch_encoder: BundledEncoder) -> None:
    texts = (speech_sentences() if source == "speech" else squad_sentences(120)) + ["?!", "Who?"]
    onnx_vectors, onnx_tokens = onnx_encoder.encode_with_tokens(texts, batch_size=16)
    torch_vectors, torch_tokens = torch_encoder.encode_with_tokens(texts, batch_size=16)
    assert cosines(onnx_vectors, torch_vectors).min() >= 0.9999
    assert [len(t) for t in onnx_tokens] == [len(t) for t in torch_tokens]
    assert all(len(t) >= 1 for t in onnx_tokens)
    for ours, reference in zip(onnx_tokens, torch_tokens, strict=True):
        assert cosines(ours, reference).min() >= 0.999


def test_both_runtimes_drop_the_same_tokens(onnx_encoder: OnnxEncoder, torch_encoder: BundledEncoder) -> None:
    onnx_encoder.warm_up()
    assert onnx_encoder._skip is not None
    assert np.array_equal(onnx_encoder._skip, torch_encoder._skipped_ids())


def test_batches_are_padded_in_steps(onnx_encoder: OnnxEncoder) -> None:
    for lengths in ([3], [9, 2], [16, 17]):
        ids, mask, _ = onnx_encoder._batch([[1] * n for n in lengths], [[0] * n for n in lengths])
        assert ids.shape[1] % index.onnx_encoder.PAD_TO_MULTIPLE == 0
        assert max(lengths) <= ids.shape[1] < max(lengths) + index.onnx_encoder.PAD_TO_MULTIPLE
        assert mask.sum(axis=1).tolist() == lengths


def test_asking_gives_the_same_answers_on_both_runtimes(onnx_encoder: OnnxEncoder,
                                                        torch_encoder: BundledEncoder) -> None:
    from qa import QA

    questions = [item["question"] for item in json.loads(QUESTIONS.read_text(encoding="utf-8"))]
    on_onnx, on_torch = QA.default(encoder=onnx_encoder), QA.default(encoder=torch_encoder)
    for question in questions:
        ours, reference = on_onnx.ask(question), on_torch.ask(question)
        assert ours.answer == reference.answer, question
        assert [p.text for p in ours.passages] == [p.text for p in reference.passages], question
        assert [p.highlights for p in ours.passages] == [p.highlights for p in reference.passages]
        assert ours.confidence == pytest.approx(reference.confidence, abs=1e-3)


def test_answering_imports_no_torch(onnx_encoder: OnnxEncoder) -> None:
    from qa import QA

    QA.default(encoder=onnx_encoder).ask("warm the caches")  # index and graph are cached now
    code = ("import sys, qa; a = qa.ask('When did Dalian receive the Global 500 award?'); "
            "assert a.answer and '2001' in a.answer, a.answer; "
            "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert out.stdout.strip() == "[]"
    assert out.stderr.strip() == ""


def _fresh_cache(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("SPEECH_QA_CACHE_DIR", str(folder))


def test_a_corrupt_cached_graph_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           onnx_encoder: OnnxEncoder,
                                           caplog: pytest.LogCaptureFixture) -> None:
    _fresh_cache(monkeypatch, tmp_path)
    texts = ["When did Dalian receive the Global 500 award?", "Who?"]
    expected = onnx_encoder.encode(texts)
    first = OnnxEncoder()
    assert np.allclose(first.encode(texts), expected, atol=1e-6)
    (graph,) = (tmp_path / "onnx").glob("*.onnx")
    good = graph.read_bytes()
    for damage in (good[: len(good) // 2], good[:1000] + bytes(64) + good[1064:]):
        graph.write_bytes(damage)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="index.onnx_cache"):
            again = OnnxEncoder()
            assert again.runtime == "onnxruntime"
        assert np.allclose(again.encode(texts), expected, atol=1e-6)
        warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert len(warned) == 1 and warned[0].startswith("cached ONNX graph unusable")
        assert graph.read_bytes() != damage  # exported again, not trusted


def test_without_a_graph_the_torch_model_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 onnx_encoder: OnnxEncoder,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    _fresh_cache(monkeypatch, tmp_path)

    def broken(folder: Path, dest: Path) -> None:
        raise RuntimeError("exporter unavailable")

    monkeypatch.setattr(index.onnx_encoder, "export_graph", broken)
    with caplog.at_level(logging.INFO):
        encoder = OnnxEncoder()
        vectors = encoder.encode(["When did Dalian receive the Global 500 award?"])
    assert encoder.runtime == "torch"
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "answering with sentence-transformers on torch" in warnings[0]
    assert "exporter unavailable" in warnings[0]
    reference = onnx_encoder.encode(["When did Dalian receive the Global 500 award?"])
    assert cosines(vectors, reference).min() >= 0.9999


def test_the_torch_runtime_can_be_chosen(monkeypatch: pytest.MonkeyPatch,
                                         caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv(index.onnx_encoder.RUNTIME_ENV, "torch")
    with caplog.at_level(logging.WARNING):
        assert OnnxEncoder().runtime == "torch"
    assert not caplog.records  # chosen, not a failure


# The generic cache, on a tiny graph (y = x + 1): what the reranker of issue 18 relies on.

def _tiny_export(offset: float, calls: list[Path]) -> Any:
    def export(dest: Path) -> None:
        import onnx
        from onnx import TensorProto, helper

        calls.append(dest)
        one = helper.make_tensor("one", TensorProto.FLOAT, [1], [offset])
        graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "tiny",
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None])],
                                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None])], [one])
        onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(dest))
    return export


def _run(session: Any) -> list[float]:
    return [float(v) for v in session.run(None, {"x": np.array([1.0, 2.0], dtype=np.float32)})[0]]


def test_cache_exports_once_and_reloads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_cache(monkeypatch, tmp_path)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"v1")
    calls: list[Path] = []
    first = cached_onnx_session("tiny", [weights], _tiny_export(1.0, calls), threads=1, probe=_run)
    second = cached_onnx_session("tiny", [weights], _tiny_export(1.0, calls), threads=1, probe=_run)
    assert _run(first) == _run(second) == [2.0, 3.0]
    assert len(calls) == 1
    assert not list((tmp_path / "onnx").glob(".tmp-*"))  # nothing half-written left behind
    weights.write_bytes(b"v2")  # other weights: another graph, exported anew
    cached_onnx_session("tiny", [weights], _tiny_export(1.0, calls), threads=1)
    assert len(calls) == 2
    assert len(list((tmp_path / "onnx").glob("tiny-*.onnx"))) == 2


@pytest.mark.parametrize("damage", ["truncate", "garble", "foreign", "sidecar", "no-sidecar"])
def test_cache_rebuilds_what_it_cannot_trust(damage: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    _fresh_cache(monkeypatch, tmp_path)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"v1")
    calls: list[Path] = []
    cached_onnx_session("tiny", [weights], _tiny_export(1.0, calls), threads=1, probe=_run)
    (graph,) = (tmp_path / "onnx").glob("tiny-*.onnx")
    sidecar = graph.with_suffix(".json")
    if damage == "truncate":
        graph.write_bytes(graph.read_bytes()[:-7])
    elif damage == "garble":
        data = bytearray(graph.read_bytes())
        data[len(data) // 2] ^= 0xFF
        graph.write_bytes(bytes(data))
    elif damage == "foreign":  # another graph with a sidecar claiming it: the probe catches it
        meta = json.loads(sidecar.read_text())
        _tiny_export(5.0, [])(graph)
        import hashlib

        meta["graph_sha256"] = hashlib.sha256(graph.read_bytes()).hexdigest()
        sidecar.write_text(json.dumps(meta))
    elif damage == "sidecar":
        sidecar.write_text("{not json")
    else:
        sidecar.unlink()
    session = cached_onnx_session("tiny", [weights], _tiny_export(1.0, calls), threads=1, probe=_run)
    assert _run(session) == [2.0, 3.0]
    assert len(calls) == 2


def test_an_export_that_fails_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from index.errors import ModelLoadError

    _fresh_cache(monkeypatch, tmp_path)
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"v1")

    def broken(dest: Path) -> None:
        dest.write_bytes(b"not a graph")

    with pytest.raises(ModelLoadError, match="cannot export tiny"):
        cached_onnx_session("tiny", [weights], broken, threads=1)
    assert not list((tmp_path / "onnx").glob("tiny-*"))


def test_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(THREADS_ENV, "3")
    assert onnx_threads() == 3
    monkeypatch.delenv(THREADS_ENV)
    assert onnx_threads() == len(os.sched_getaffinity(0))
    monkeypatch.setenv(THREADS_ENV, "zero")
    assert onnx_threads() == len(os.sched_getaffinity(0))


def test_ray_replicas_run_one_thread_each() -> None:
    pytest.importorskip("ray")
    from ui.cluster import REPLICA_ENV

    assert REPLICA_ENV[THREADS_ENV] == "1"
