"""Which execution providers an ONNX model gets, decided without onnxruntime and without a GPU."""

from __future__ import annotations

import pytest

from predictor.runtimes import RuntimeLoadError
from predictor.runtimes.onnx_providers import (
    CPU,
    CUDA,
    ProviderChoice,
    choose_providers,
    confirm_providers,
    datatype_of,
    declared_dims,
)

CPU_BUILD = ["AzureExecutionProvider", CPU]
GPU_BUILD = ["TensorrtExecutionProvider", CUDA, CPU]


@pytest.mark.parametrize(
    ("requested", "available", "providers", "device"),
    [
        ("cpu", GPU_BUILD, [CPU], "cpu"),
        ("auto", CPU_BUILD, [CPU], "cpu"),
        ("auto", GPU_BUILD, [(CUDA, {"device_id": 0}), CPU], "cuda:0"),
        ("cuda", GPU_BUILD, [(CUDA, {"device_id": 0}), CPU], "cuda:0"),
        ("cuda:3", GPU_BUILD, [(CUDA, {"device_id": 3}), CPU], "cuda:3"),
    ],
)
def test_choice(requested: str, available: list[str], providers: list[object], device: str) -> None:
    choice = choose_providers(requested, available)
    assert choice == ProviderChoice(providers, device)
    assert choice.cuda_index == (None if device == "cpu" else int(device.split(":")[1]))


def test_cuda_on_a_cpu_build_names_the_package() -> None:
    with pytest.raises(RuntimeLoadError) as info:
        choose_providers("cuda:1", CPU_BUILD)
    assert str(info.value) == (
        f"device 'cuda:1' asked for, but this onnxruntime has no {CUDA} (it offers {CPU_BUILD}); "
        "install onnxruntime-gpu in place of onnxruntime"
    )


def test_a_session_that_fell_back_to_the_cpu_is_refused() -> None:
    choice = choose_providers("auto", GPU_BUILD)
    with pytest.raises(RuntimeLoadError, match=r"could not start CUDAExecutionProvider \(the session runs on \['CPU"):
        confirm_providers(choice, [CPU])
    confirm_providers(choice, [CUDA, CPU])
    confirm_providers(choose_providers("cpu", GPU_BUILD), [CPU])


def test_datatypes() -> None:
    assert datatype_of("tensor(float)", "x") == "FP32"
    assert datatype_of("tensor(int64)", "x") == "INT64"
    with pytest.raises(RuntimeLoadError, match=r"'p' has type seq\(map\(int64,tensor\(float\)\)\).*zipmap"):
        datatype_of("seq(map(int64,tensor(float)))", "p")
    with pytest.raises(
        RuntimeLoadError, match=r"'b' has type tensor\(bfloat16\), which is not a tensor type served here$"
    ):
        datatype_of("tensor(bfloat16)", "b")


def test_symbolic_dimensions_become_free() -> None:
    assert declared_dims(["batch", 4]) == [-1, 4]
    assert declared_dims([None, "N", 3, 0]) == [-1, -1, 3, -1]
