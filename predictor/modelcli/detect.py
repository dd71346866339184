"""Which framework and artifact format a model file is, from its name and first bytes.

Content decides where a format has a signature (LightGBM text starts with ``tree``, XGBoost JSON
and UBJSON hold a ``learner`` object near the start); the suffix decides where it has none
(ONNX protobuf, pickles). Pure: the caller reads the bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from predictor.modelcli.errors import CommandError

# Enough bytes for every signature below: XGBoost writes "learner" within its first few dozen.
HEAD_BYTES = 256

_PICKLE_SUFFIXES = (".joblib", ".pkl", ".pickle")
_TORCH_SUFFIXES = (".pt", ".pt2", ".pth", ".ts")
_KERAS_SUFFIXES = (".keras", ".h5")
# The names each framework saves under, for messages.
KNOWN = (
    ".onnx (ONNX), .json or .ubj (XGBoost), .txt (LightGBM text), .joblib or .pkl (scikit-learn), "
    "a SavedModel directory (TensorFlow)"
)


@dataclass(frozen=True)
class Detected:
    framework: str  # a manifest framework
    format: str  # a manifest artifact.format
    suffix: str  # what the copied artifact is called: model<suffix>


def detect(name: str, head: bytes) -> Detected:
    """The format of the file called ``name`` whose first bytes are ``head``, or a CommandError
    that says why it is not one ``pack`` can serve."""
    suffix = _suffix(name)
    if not head:
        raise CommandError(f"{name} is empty: there is no model in it")
    if head.startswith((b"tree\n", b"tree\r\n")):
        return Detected("lightgbm", "lightgbm_text", ".txt")
    if head.lstrip()[:1] == b"{":
        return _json_like(name, head)
    if suffix == ".onnx":
        return Detected("onnx", "onnx", ".onnx")
    if suffix in _PICKLE_SUFFIXES:
        return Detected("sklearn", "joblib", ".joblib")
    if suffix in _KERAS_SUFFIXES:
        raise CommandError(f"{name} is a Keras file, which is not served: export a SavedModel with model.export(DIR)")
    if suffix in _TORCH_SUFFIXES or head.startswith(b"PK\x03\x04"):
        raise CommandError(
            f"{name} looks like a PyTorch program (TorchScript or torch.export zip): the predictor serves it, but "
            "pack cannot read its input shapes from the file; write model.yaml by hand (README: 'Serve your own model')"
        )
    if suffix == ".pb":
        raise CommandError(f"{name} is one file of a TensorFlow SavedModel: pack the directory that holds it")
    if suffix == ".txt":
        raise CommandError(f"{name} is not a LightGBM text model: LightGBM's model files start with 'tree'")
    raise CommandError(f"cannot tell what kind of model {name} is; pack reads {KNOWN}")


def detect_directory(name: str, entries: set[str]) -> Detected:
    """A directory is a TensorFlow SavedModel when it holds ``saved_model.pb``; ``entries`` are its
    top-level names."""
    if "saved_model.pb" in entries:
        return Detected("tensorflow", "saved_model", "")
    if "saved_model.pbtxt" in entries:
        raise CommandError(f"{name} holds a text SavedModel (saved_model.pbtxt); save it as binary (saved_model.pb)")
    raise CommandError(f"{name} is a directory without saved_model.pb; pack takes one model file ({KNOWN})")


def _json_like(name: str, head: bytes) -> Detected:
    """XGBoost's JSON (``{"learner": ...``) or UBJSON (``{L...learner``: binary lengths and markers)."""
    if b"learner" not in head:
        raise CommandError(f"{name} is a JSON object but not an XGBoost model: no 'learner' near its start")
    body = head.lstrip()[1:].lstrip()
    if body[:1] == b'"':
        return Detected("xgboost", "xgboost_json", ".json")
    return Detected("xgboost", "xgboost_ubj", ".ubj")


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:].lower() if dot > name.rfind("/") and dot != -1 else ""
