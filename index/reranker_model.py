"""The reranker's network on torch: one MiniLM encoder with a relevance head and a span head.

Why one network with two heads: the question and a candidate sentence are read together
once; the [CLS] vector says how well the sentence answers (the relevance logit) and the
token vectors say where in it the answer lies (start/end logits). One forward pass serves
the rerank and the answer phrase.

Why a separate module: torch is needed only to train the weights, to export the ONNX
graph, and as the fallback runtime. The query path (``index.reranker``) imports this
module only when onnxruntime cannot be used.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import BertConfig, BertModel

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


class ReaderRanker(nn.Module):
    """MiniLM (BERT) encoder + ``score`` (relevance, from [CLS]) + ``span`` (start/end)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.encoder = BertModel(config, add_pooling_layer=False)
        self.score = nn.Linear(config.hidden_size, 1)
        self.span = nn.Linear(config.hidden_size, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                token_type_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return ``(relevance (batch,), start (batch, tokens), end (batch, tokens))`` logits."""
        hidden = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state
        relevance = self.score(hidden[:, 0]).squeeze(-1)
        span = self.span(hidden)
        return relevance, span[..., 0], span[..., 1]

    @classmethod
    def from_encoder(cls, encoder_dir: str | Path) -> ReaderRanker:
        """A new network whose encoder starts from a BERT folder (the bundled MiniLM)."""
        encoder = BertModel.from_pretrained(str(encoder_dir), add_pooling_layer=False)
        model = cls(encoder.config)
        model.encoder = encoder
        return model

    @classmethod
    def load(cls, folder: str | Path) -> ReaderRanker:
        """The trained network from ``folder`` (``config.json`` + fp16 safetensors), in fp32."""
        from safetensors.torch import load_file

        folder = Path(folder)
        config = BertConfig.from_dict(json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8")))
        model = cls(config)
        state = {name: tensor.float() for name, tensor in load_file(str(folder / WEIGHTS_FILE)).items()}
        model.load_state_dict(state)
        model.eval()
        return model

    def save(self, folder: str | Path) -> None:
        """Write ``config.json`` and the weights as fp16 safetensors (half the size; the
        scores move by about 1e-3, far below the gaps the ranking acts on)."""
        from safetensors.torch import save_file

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        config: dict[str, Any] = self.encoder.config.to_dict()
        (folder / CONFIG_FILE).write_text(json.dumps(config, indent=1, sort_keys=True), encoding="utf-8")
        state = {name: tensor.detach().to(torch.float16).contiguous()
                 for name, tensor in self.state_dict().items()}
        save_file(state, str(folder / WEIGHTS_FILE))
        (folder / WEIGHTS_FILE).chmod(0o644)  # package data: readable by every user


def export_onnx(folder: str | Path, dest: str | Path) -> None:
    """Write the trained network in ``folder`` as an ONNX graph at ``dest`` (fp32).

    Why the TorchScript exporter (``dynamo=False``): it traces this small encoder exactly
    (outputs equal torch's to 1e-6) with dynamic batch and length axes, in seconds.
    """
    model = ReaderRanker.load(folder)
    example = torch.ones((2, 16), dtype=torch.int64)
    names = ["input_ids", "attention_mask", "token_type_ids"]
    axes = {name: {0: "batch", 1: "tokens"} for name in [*names, "start", "end"]}
    axes["relevance"] = {0: "batch"}
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's notes on transformers' Python branches
        torch.onnx.export(model, (example, example, torch.zeros_like(example)), str(dest),
                          input_names=names, output_names=["relevance", "start", "end"],
                          dynamic_axes=axes, opset_version=17, dynamo=False)
