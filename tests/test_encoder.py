"""The torch encoder's memory behaviour: batches padded in steps, weights resident once loaded.

The torch encoder is the reference and the fallback; ``tests/test_onnx.py`` covers the ONNX one.

Why these are tests and not only bench rows: both are properties of how the model is set up
(what the tokenizer is told, what is read at load), and a later change to the loading code
could silently drop them. How much memory they save is measured by ``bench/load.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from index.encoder import PAD_TO_MULTIPLE, bundled_model_path

TEXTS = [
    "When did Dalian receive the Global 500 award?",
    "Who?",
    "How many projects did the investment include, and which of them were about clean water "
    "and the air of the city in the years after 2001?",
]
UNPADDED = {"text": {"pad_to_multiple_of": None}}


def test_batches_are_padded_in_steps(torch_encoder: Any) -> None:
    model = torch_encoder._get_model()
    for texts in (TEXTS[:1], TEXTS[1:2], TEXTS):
        padded = model.preprocess(texts)["input_ids"].shape[1]
        plain = model.preprocess(texts, processing_kwargs=UNPADDED)["input_ids"].shape[1]
        assert padded % PAD_TO_MULTIPLE == 0
        assert plain <= padded < plain + PAD_TO_MULTIPLE


def test_padding_changes_no_vector(torch_encoder: Any) -> None:
    model = torch_encoder._get_model()
    plain = model.encode(TEXTS, normalize_embeddings=True, convert_to_numpy=True,
                         processing_kwargs=UNPADDED)
    assert np.allclose(torch_encoder.encode(TEXTS), plain, atol=1e-5)
    vectors, tokens = torch_encoder.encode_with_tokens(TEXTS)
    assert np.allclose(vectors, plain, atol=1e-5)
    settings = model[0].processing_kwargs
    model[0].processing_kwargs = UNPADDED
    try:
        _, plain_tokens = torch_encoder.encode_with_tokens(TEXTS)
    finally:
        model[0].processing_kwargs = settings
    # The padding never shows up as token vectors: the same tokens as without it.
    assert [len(t) for t in tokens] == [len(t) for t in plain_tokens]
    assert all(np.allclose(a, b, atol=1e-5) for a, b in zip(tokens, plain_tokens, strict=True))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/smaps")
def test_weights_are_resident_once_loaded(torch_encoder: Any) -> None:
    torch_encoder.warm_up()
    weights = Path(bundled_model_path()) / "model.safetensors"
    if not weights.is_file():
        pytest.skip("the bundled weights are not one safetensors file")
    resident_kb, mapped = 0, False
    current = ""
    for line in Path("/proc/self/smaps").read_text().splitlines():
        parts = line.split(maxsplit=5)
        if len(parts) >= 5 and "-" in parts[0] and ":" in parts[3]:
            current = parts[5] if len(parts) == 6 else ""
        elif line.startswith("Rss:") and Path(current) == weights:
            mapped = True
            resident_kb += int(line.split()[1])
    if not mapped:
        pytest.skip("the weights were copied, not memory-mapped: nothing to page in")
    # Every page of the file: the token embedding table is no longer read row by row.
    assert resident_kb * 1024 >= 0.98 * weights.stat().st_size
