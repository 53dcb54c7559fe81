"""The BM25 tokenizer gives exactly what ``bm25s.tokenize`` gives, on real and odd texts."""

from __future__ import annotations

import json
from pathlib import Path

import bm25s
import pytest

from index.lexical import _stemmer, tokenize
from ingest import default_documents, split_sentences

SQUAD = Path(__file__).resolve().parents[2] / "shared" / "bench" / "squad2_dev_3articles.json"
NO_SQUAD = ("needs ../shared/bench/squad2_dev_3articles.json: three SQuAD 2.0 dev articles "
            "(rajpurkar.github.io/SQuAD-explorer, CC BY-SA 4.0); CI always has it")


def _bm25s(texts: list[str]) -> list[list[str]]:
    result = bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer(), return_ids=False, show_progress=False)
    return [list(tokens) for tokens in result]  # type: ignore[union-attr]


@pytest.mark.skipif(not SQUAD.is_file(), reason=NO_SQUAD)
def test_tokens_equal_bm25s_on_the_speech_and_the_squad_questions() -> None:
    text = default_documents()[0].text
    sentences = [text[s.start:s.end] for s in split_sentences(text)]
    squad = json.loads(SQUAD.read_text(encoding="utf-8"))
    questions = [q["question"] for article in squad["data"] for paragraph in article["paragraphs"]
                 for q in paragraph["qas"]]
    texts = sentences + questions
    assert len(texts) > 500
    assert tokenize(texts) == _bm25s(texts)


def test_tokens_equal_bm25s_on_odd_text() -> None:
    texts = ["", "a", "I", "Don't STOP!", "The 1990s' CO2 levels — 3.5%", "Ünïcödé wörds, naïve café",
             "大连什么时候获得全球500佳奖？", "x_y snake_case 2001-2005", "  \n\t "]
    assert tokenize(texts) == _bm25s(texts)
