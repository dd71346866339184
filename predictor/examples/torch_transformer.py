"""A transformer text classifier with random weights, as a servable torch.export program.

The benchmark's GPU model (issue 11): a request is 128 token ids, the network is 4 pre-norm
transformer encoder layers (d_model 256, 4 heads, feed-forward 1024), mean pooling and a linear
head over 4 classes. The weights are random (seeded): the benchmark measures serving, not
accuracy, and nothing may be downloaded. Its answers are deterministic for a given build.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec


class EncoderLayer(nn.Module):
    """Pre-norm self-attention and feed-forward, each with a residual connection."""

    def __init__(self, width: int, heads: int, hidden: int) -> None:
        super().__init__()
        self.heads = heads
        self.attention_norm = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.projection = nn.Linear(width, width)
        self.feed_forward_norm = nn.LayerNorm(width)
        self.feed_forward = nn.Sequential(nn.Linear(width, hidden), nn.GELU(), nn.Linear(hidden, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        qkv = self.qkv(self.attention_norm(x)).view(batch, length, 3, self.heads, width // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)
        attended = functional.scaled_dot_product_attention(q, k, v)
        x = x + self.projection(attended.transpose(1, 2).reshape(batch, length, width))
        out: torch.Tensor = x + self.feed_forward(self.feed_forward_norm(x))
        return out


class TextClassifier(nn.Module):
    def __init__(
        self, vocabulary: int, length: int, width: int, heads: int, hidden: int, layers: int, classes: int
    ) -> None:
        super().__init__()
        self.vocabulary = vocabulary
        self.embedding = nn.Embedding(vocabulary, width)
        self.position = nn.Parameter(torch.randn(length, width) * 0.02)
        self.layers = nn.ModuleList(EncoderLayer(width, heads, hidden) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        # An id outside the vocabulary must not reach the embedding: on a GPU that is a device-side
        # assert, which poisons the process's CUDA context for every later request.
        x = self.embedding(tokens.clamp(0, self.vocabulary - 1)) + self.position
        for layer in self.layers:
            x = layer(x)
        logits: torch.Tensor = self.head(self.norm(x).mean(dim=1))
        return logits


def build(
    out: Path,
    name: str = "textclf",
    *,
    vocabulary: int = 8192,
    length: int = 128,
    width: int = 256,
    heads: int = 4,
    hidden: int = 1024,
    layers: int = 4,
    classes: int = 4,
) -> ModelSpec:
    if width % heads:
        raise ValueError(f"width {width} must be a multiple of heads {heads}")
    torch.manual_seed(0)
    network = TextClassifier(vocabulary, length, width, heads, hidden, layers, classes).eval()
    out.mkdir(parents=True, exist_ok=True)
    artifact = out / "model.pt2"
    example = torch.zeros(2, length, dtype=torch.int64)
    batch = torch.export.Dim("batch", min=1)
    with torch.no_grad():
        program = torch.export.export(network, (example,), dynamic_shapes=({0: batch},))
    torch.export.save(program, str(artifact))
    spec = ModelSpec.model_validate(
        {
            "name": name,
            "framework": "torch",
            "artifact": {"path": artifact.name, "sha256": sha256_of(artifact), "format": "torch_export"},
            "inputs": [{"name": "tokens", "datatype": "INT64", "shape": [-1, length]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, classes], "source": "probabilities"},
            ],
            "labels": [f"class-{i}" for i in range(classes)],
        }
    )
    dump_spec(spec, out)
    return spec
