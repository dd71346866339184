"""A small multi-layer perceptron on scikit-learn's bundled 8x8 digits, saved as a torch.export program.

Pixel values are 0..16; the manifest's scaling maps them to 0..1, so clients send raw pixels.
``hidden`` and ``depth`` make wider variants for benchmarks (a wide network shows what batching
buys when the model, not the HTTP stack, dominates a request).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from sklearn.datasets import load_digits
from torch import nn

from predictor.modeldir.artifacts import sha256_of
from predictor.modeldir.spec import ModelSpec, dump_spec


def make_network(hidden: int, depth: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = 64
    for _ in range(depth):
        layers += [nn.Linear(width, hidden), nn.ReLU()]
        width = hidden
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def train(network: nn.Module, epochs: int, seed: int = 0) -> float:
    """Mini-batch Adam on all 1,797 digits; returns the training accuracy."""
    digits = load_digits()
    features = torch.tensor(digits.data / 16.0, dtype=torch.float32)
    targets = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    network.train()
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for start in range(0, len(order), 64):
            batch = order[start : start + 64]
            optimizer.zero_grad()
            loss_fn(network(features[batch]), targets[batch]).backward()
            optimizer.step()
    network.eval()
    with torch.inference_mode():
        return float((network(features).argmax(dim=1) == targets).float().mean())


def build(
    out: Path,
    name: str = "digits",
    hidden: int = 128,
    depth: int = 2,
    epochs: int = 20,
    fmt: Literal["torchscript", "torch_export"] = "torch_export",
) -> ModelSpec:
    torch.manual_seed(0)
    network = make_network(hidden, depth)
    accuracy = train(network, epochs) if epochs > 0 else float("nan")
    out.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(2, 64)
    if fmt == "torchscript":
        artifact = out / "model.pt"
        traced = torch.jit.trace(network, example)  # type: ignore[no-untyped-call]
        torch.jit.save(traced, str(artifact))
    else:
        artifact = out / "model.pt2"
        batch = torch.export.Dim("batch", min=1)
        torch.export.save(torch.export.export(network, (example,), dynamic_shapes=({0: batch},)), str(artifact))
    spec = ModelSpec.model_validate(
        {
            "name": name,
            "framework": "torch",
            "artifact": {"path": artifact.name, "sha256": sha256_of(artifact), "format": fmt},
            "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}],
            "outputs": [
                {"name": "label", "datatype": "INT64", "shape": [-1], "source": "label"},
                {"name": "probabilities", "datatype": "FP32", "shape": [-1, 10], "source": "probabilities"},
            ],
            "labels": [str(d) for d in range(10)],
            "preprocessing": {"scaling": {"mean": [0.0] * 64, "std": [16.0] * 64}},
        }
    )
    dump_spec(spec, out)
    print(f"trained {name}: hidden={hidden} depth={depth} epochs={epochs} train accuracy={accuracy:.3f}")
    return spec
