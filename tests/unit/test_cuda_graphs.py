"""CUDA graphs: the buckets and padding as pure logic, the buffer plumbing on the CPU, and the real
capture against the eager path where a CUDA device exists."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from predictor.examples import torch_transformer
from predictor.modeldir.spec import ModelSpec, SpecError, dump_spec, load_spec, parse_spec
from predictor.runtimes import load_runtime
from predictor.runtimes.cuda_graphs import (
    BucketedGraphs,
    Chunk,
    Compute,
    Replay,
    batch_buckets,
    plan_chunks,
)
from predictor.runtimes.torch_runtime import TorchRuntime

# Tiny, so the CPU tests stay fast; the GPU test builds the benchmark's full size.
TINY = {"vocabulary": 64, "length": 8, "width": 16, "heads": 2, "hidden": 32, "layers": 2}


# ---- buckets and padding (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("max_rows", "buckets"),
    [(1, [1]), (2, [1, 2]), (32, [1, 2, 4, 8, 16, 32]), (48, [1, 2, 4, 8, 16, 32, 48]), (5, [1, 2, 4, 5])],
)
def test_buckets_are_powers_of_two_up_to_the_largest_batch(max_rows: int, buckets: list[int]) -> None:
    assert batch_buckets(max_rows) == buckets


def test_buckets_need_a_row() -> None:
    with pytest.raises(ValueError, match="max_rows must be at least 1, got 0"):
        batch_buckets(0)


@pytest.mark.parametrize(
    ("rows", "chunks"),
    [
        (1, [Chunk(0, 1, 1)]),
        (3, [Chunk(0, 3, 4)]),  # padded up to the next bucket
        (4, [Chunk(0, 4, 4)]),
        (17, [Chunk(0, 17, 32)]),
        (32, [Chunk(0, 32, 32)]),
        (33, [Chunk(0, 32, 32), Chunk(32, 33, 1)]),  # past the largest bucket: chunks, then the rest
        (70, [Chunk(0, 32, 32), Chunk(32, 64, 32), Chunk(64, 70, 8)]),
    ],
)
def test_plan_chunks_pads_to_the_next_bucket(rows: int, chunks: list[Chunk]) -> None:
    plan = plan_chunks(rows, batch_buckets(32))
    assert plan == chunks
    assert sum(c.rows for c in plan) == rows
    assert all(c.rows <= c.bucket for c in plan)


def test_plan_chunks_needs_a_row() -> None:
    with pytest.raises(ValueError, match="at least one row, got 0"):
        plan_chunks(0, [1, 2])


# ---- the buffers and chunks, on the CPU with an eager stand-in for capture ------------------------


def run_eagerly(compute: Compute, inputs: list[torch.Tensor]) -> tuple[Replay, dict[str, torch.Tensor]]:
    """A capture that records nothing: each replay reruns ``compute`` on the same input buffers,
    which is what a graph replay does, so everything but the CUDA graph itself is exercised."""
    outputs = dict(compute(*inputs))

    def replay() -> None:
        outputs.update(compute(*inputs))

    return replay, outputs


def _runtime(model_dir: Path) -> tuple[TorchRuntime, ModelSpec]:
    spec = load_spec(model_dir)
    runtime = load_runtime(spec, model_dir, "cpu")
    assert isinstance(runtime, TorchRuntime)
    return runtime, spec


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("models") / "tiny"
    torch_transformer.build(path, **TINY)  # type: ignore[arg-type]
    return path


def tokens(rows: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, TINY["vocabulary"], (rows, TINY["length"]), dtype=np.int64)


def test_bucketed_runs_match_the_eager_path(tiny_dir: Path) -> None:
    eager, _ = _runtime(tiny_dir)
    bucketed, _ = _runtime(tiny_dir)
    bucketed.capture_graphs({"tokens": tokens(1, 0)}, batch_buckets(8), capture=run_eagerly)
    assert bucketed.graph_buckets == [1, 2, 4, 8]
    # Sizes that hit a bucket, need padding, or need chunks; a big batch first, so the padding
    # rows of the later, smaller ones hold its stale data, which must not leak into any answer.
    for seed, rows in enumerate([19, 1, 3, 8, 5, 2, 17]):
        batch = tokens(rows, seed)
        got, want = bucketed.predict({"tokens": batch}), eager.predict({"tokens": batch})
        assert got.keys() == want.keys()
        assert got["label"].dtype == np.int64 and got["probabilities"].dtype == np.float32
        assert got["probabilities"].shape == (rows, 4)
        np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(got["label"], want["label"])


def test_answers_do_not_change_when_later_batches_reuse_the_buffers(tiny_dir: Path) -> None:
    runtime, _ = _runtime(tiny_dir)
    runtime.capture_graphs({"tokens": tokens(1, 0)}, batch_buckets(4), capture=run_eagerly)
    first = runtime.predict({"tokens": tokens(3, 1)})
    kept = {name: array.copy() for name, array in first.items()}
    runtime.predict({"tokens": tokens(4, 2)})
    for name in kept:
        np.testing.assert_array_equal(first[name], kept[name])


def test_read_only_inputs_are_accepted(tiny_dir: Path) -> None:
    runtime, _ = _runtime(tiny_dir)
    runtime.capture_graphs({"tokens": tokens(1, 0)}, [1, 2], capture=run_eagerly)
    batch = tokens(2, 3)
    batch.flags.writeable = False  # as a binary-extension body is
    assert runtime.predict({"tokens": batch})["label"].shape == (2,)


def test_bucketed_graphs_hold_static_buffers_per_bucket() -> None:
    calls: list[int] = []

    def compute(x: torch.Tensor) -> dict[str, torch.Tensor]:
        calls.append(x.shape[0])
        return {"double": x * 2}

    graphs = BucketedGraphs(compute, [((2,), torch.float32)], [1, 4], torch.device("cpu"), run_eagerly)
    assert calls == [4, 1]  # captured largest first, each once, before any batch
    out = graphs.run([np.arange(6, dtype=np.float32).reshape(3, 2)])
    assert calls == [4, 1, 4]  # 3 rows ran in the 4-row bucket
    np.testing.assert_array_equal(out["double"], np.arange(6, dtype=np.float32).reshape(3, 2) * 2)


# ---- the manifest and the CPU --------------------------------------------------------------------


def copy_with_runtime(source: Path, target: Path, **runtime: object) -> Path:
    """A copy of a model directory whose manifest has ``runtime`` changed."""
    spec = load_spec(source)
    target.mkdir()
    (target / spec.artifact.path).write_bytes((source / spec.artifact.path).read_bytes())
    dump_spec(spec.model_copy(update={"runtime": spec.runtime.model_copy(update=runtime)}), target)
    return target


def test_cuda_graphs_are_ignored_on_the_cpu(tiny_dir: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    model_dir = copy_with_runtime(tiny_dir, tmp_path / "graphs", cuda_graphs=True)
    with caplog.at_level(logging.INFO, logger="predictor.runtimes.torch_runtime"):
        runtime = load_runtime(load_spec(model_dir), model_dir, "cpu")
    assert isinstance(runtime, TorchRuntime) and runtime.graph_buckets == []
    assert "cuda_graphs is ignored on cpu" in caplog.text


def test_cuda_graphs_are_for_torch_models_only(tiny_dir: Path) -> None:
    data = load_spec(tiny_dir).model_dump(mode="json")
    data.update(framework="sklearn", artifact={**data["artifact"], "format": "joblib"})
    data["runtime"]["cuda_graphs"] = True
    with pytest.raises(SpecError, match=r"runtime\.cuda_graphs is for torch models, this one is sklearn"):
        parse_spec(data)


# ---- the real thing, on a CUDA device ------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device: CUDA graphs run only on a GPU")


@needs_cuda
def test_cuda_graphs_match_eager_on_the_gpu(tmp_path: Path) -> None:
    torch_transformer.build(tmp_path / "built")
    rng = np.random.default_rng(0)
    for half, tolerance in ((False, 1e-4), (True, 5e-3)):
        eager = _gpu_runtime(tmp_path, half=half, graphs=False)
        graphed = _gpu_runtime(tmp_path, half=half, graphs=True)
        assert graphed.graph_buckets == [1, 2, 4, 8, 16, 32]  # all captured at load, none on a request
        for rows in (1, 3, 8, 33, 70):
            batch = {"tokens": rng.integers(0, 8192, (rows, 128), dtype=np.int64)}
            got, want = graphed.predict(batch), eager.predict(batch)
            np.testing.assert_allclose(got["probabilities"], want["probabilities"], rtol=tolerance, atol=tolerance)
            # Labels agree wherever the top two classes are further apart than the tolerance.
            top2 = np.sort(want["probabilities"], axis=1)[:, -2:]
            clear = top2[:, 1] - top2[:, 0] > 2 * tolerance
            np.testing.assert_array_equal(got["label"][clear], want["label"][clear])


def _gpu_runtime(root: Path, *, half: bool, graphs: bool) -> TorchRuntime:
    model_dir = copy_with_runtime(
        root / "built", root / f"half-{half}-graphs-{graphs}", cuda_graphs=graphs, half_precision=half
    )
    loaded = load_runtime(load_spec(model_dir), model_dir, "cuda", max_batch_size=32)
    assert isinstance(loaded, TorchRuntime)
    return loaded
