"""``servekit-model pack``'s format detection, from a file's name and first bytes."""

from __future__ import annotations

import pytest

from predictor.modelcli.detect import Detected, detect, detect_directory
from predictor.modelcli.errors import CommandError


@pytest.mark.parametrize(
    ("name", "head", "expected"),
    [
        ("model.txt", b"tree\nversion=v4\n", Detected("lightgbm", "lightgbm_text", ".txt")),
        ("booster", b"tree\r\nversion=v4\r\n", Detected("lightgbm", "lightgbm_text", ".txt")),
        ("m.json", b'{"learner":{"attributes":{}', Detected("xgboost", "xgboost_json", ".json")),
        ("m.bin", b'  {\n  "learner": {', Detected("xgboost", "xgboost_json", ".json")),
        ("m.ubj", b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{", Detected("xgboost", "xgboost_ubj", ".ubj")),
        ("graph.ONNX", b"\x08\x08\x12\x07skl2onnx", Detected("onnx", "onnx", ".onnx")),
        ("m.joblib", b"\x80\x04\x95", Detected("sklearn", "joblib", ".joblib")),
        ("m.pkl", b"\x80\x05\x95", Detected("sklearn", "joblib", ".joblib")),
    ],
)
def test_detected(name: str, head: bytes, expected: Detected) -> None:
    assert detect(name, head) == expected


@pytest.mark.parametrize(
    ("name", "head", "reason"),
    [
        ("m.onnx", b"", "m.onnx is empty: there is no model in it"),
        ("config.json", b'{"layers": []}', "config.json is a JSON object but not an XGBoost model"),
        ("notes.txt", b"hello", "notes.txt is not a LightGBM text model"),
        ("net.pt2", b"PK\x03\x04", "net.pt2 looks like a PyTorch program"),
        ("archive", b"PK\x03\x04", "archive looks like a PyTorch program"),
        (
            "saved_model.pb",
            b"\x08\x01",
            "saved_model.pb is one file of a TensorFlow SavedModel: pack the directory",
        ),
        ("net.keras", b"PK\x03\x04", "net.keras is a Keras file, which is not served"),
        ("model.bin", b"\x00\x01", "cannot tell what kind of model model.bin is; pack reads .onnx (ONNX)"),
        ("dir.v2/model", b"\x00", "cannot tell what kind of model dir.v2/model is"),
    ],
)
def test_refused_with_a_reason(name: str, head: bytes, reason: str) -> None:
    with pytest.raises(CommandError) as info:
        detect(name, head)
    assert str(info.value).startswith(reason), str(info.value)


def test_a_directory_is_a_saved_model_or_refused() -> None:
    assert detect_directory("m", {"saved_model.pb", "variables"}) == Detected("tensorflow", "saved_model", "")
    with pytest.raises(CommandError, match=r"^m holds a text SavedModel \(saved_model.pbtxt\)"):
        detect_directory("m", {"saved_model.pbtxt"})
    with pytest.raises(CommandError, match=r"^m is a directory without saved_model.pb; pack takes one model file"):
        detect_directory("m", {"weights.bin"})
