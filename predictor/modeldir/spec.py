"""The model manifest: what a model directory holds and how its tensors look.

A model directory is self-describing: ``model.yaml`` names the framework, the artifact and its
sha256, the input and output tensors (Open Inference Protocol datatypes, ``-1`` for the batch
axis) and the preprocessing that turns v1 ``instances`` into the declared input. Everything here
is pure data and validation; reading the file is the only I/O.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

MANIFEST_NAME = "model.yaml"

# Open Inference Protocol tensor datatypes -> numpy dtype names. BYTES are strings on the wire.
DATATYPE_TO_NUMPY: dict[str, str] = {
    "BOOL": "bool",
    "UINT8": "uint8",
    "UINT16": "uint16",
    "UINT32": "uint32",
    "UINT64": "uint64",
    "INT8": "int8",
    "INT16": "int16",
    "INT32": "int32",
    "INT64": "int64",
    "FP16": "float16",
    "FP32": "float32",
    "FP64": "float64",
    "BYTES": "object",
}
Datatype = Literal[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64",
    "BYTES",
]  # fmt: skip
_SHA256 = re.compile(r"[0-9a-f]{64}")
# A model name becomes part of URL paths (/v2/models/{name}) and Kubernetes object names.
_MODEL_NAME = re.compile(r"[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?")


def check_device(value: str) -> str:
    """A device name the runtimes understand; shared by the manifest and the --device flag."""
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
    return value


class SpecError(ValueError):
    """The manifest is missing, unreadable or does not describe a servable model."""


class _Strict(BaseModel):
    # Unknown keys are typos until proven otherwise: `max_batchsize` must not be silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorSpec(_Strict):
    """One named tensor of the model's signature."""

    name: Annotated[str, Field(min_length=1)]
    datatype: Datatype
    # -1 marks a variable dimension; the first dimension is the batch axis and must be -1.
    shape: Annotated[list[int], Field(min_length=1)]
    allow_nan: bool = False

    @field_validator("shape")
    @classmethod
    def _check_shape(cls, shape: list[int]) -> list[int]:
        if shape[0] != -1:
            raise ValueError(f"the first dimension is the batch axis and must be -1, got {shape[0]}")
        bad = [d for d in shape if d == 0 or d < -1]
        if bad:
            raise ValueError(f"dimensions must be positive or -1, got {bad} in {shape}")
        return shape

    @property
    def numpy_dtype(self) -> str:
        return DATATYPE_TO_NUMPY[self.datatype]

    def metadata(self) -> dict[str, Any]:
        """The tensor as the v2 model-metadata endpoint describes it."""
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


OutputSource = Literal["label", "probabilities", "raw"]


class OutputSpec(TensorSpec):
    """A declared output and what it is computed from.

    ``label``: the predicted class (sklearn ``predict``, torch ``argmax``, a boosted classifier's
    most probable class); ``probabilities``: class probabilities (sklearn ``predict_proba``, torch
    ``softmax`` of the logits, a boosted classifier's predicted probabilities); ``raw``: the model's
    own output (sklearn ``predict`` for regressors, torch logits, a booster's prediction, and for
    ONNX the graph output of the same name).
    """

    source: OutputSource = "raw"


Framework = Literal["sklearn", "torch", "onnx", "xgboost", "lightgbm", "tensorflow"]
ArtifactFormat = Literal[
    "joblib", "pickle", "torchscript", "torch_export", "onnx", "xgboost_json", "xgboost_ubj", "lightgbm_text",
    "saved_model",
]  # fmt: skip
# Which artifact formats each framework reads; the first is what a missing ``format`` means unless
# the runtime tells the format from the file (torch: a .pt2 suffix, xgboost: .ubj).
FORMATS_BY_FRAMEWORK: dict[str, tuple[str, ...]] = {
    "sklearn": ("joblib", "pickle"),
    "torch": ("torchscript", "torch_export"),
    "onnx": ("onnx",),
    "xgboost": ("xgboost_json", "xgboost_ubj"),
    "lightgbm": ("lightgbm_text",),
    # A SavedModel is a directory: artifact.path names it, its sha256 is its listing's (artifacts.py).
    "tensorflow": ("saved_model",),
}
# Frameworks whose model names its own outputs: the manifest picks among them, it computes none.
SELF_DESCRIBED = ("onnx", "tensorflow")


class HashedFile(_Strict):
    """A file of the model directory whose sha256 the manifest names; checked before it is read."""

    path: Annotated[str, Field(min_length=1)]
    sha256: str

    @field_validator("sha256")
    @classmethod
    def _check_sha(cls, value: str) -> str:
        value = value.lower()
        if not _SHA256.fullmatch(value):
            raise ValueError(f"sha256 must be 64 hex digits, got {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _check_path(cls, value: str) -> str:
        # The artifact lives inside the model directory: no absolute paths, no escaping with "..".
        if Path(value).is_absolute() or ".." in Path(value).parts:
            raise ValueError(f"artifact path must be relative to the model directory, got {value!r}")
        return value


class Artifact(HashedFile):
    # The file's format within its framework (FORMATS_BY_FRAMEWORK); optional where the runtime can
    # tell, e.g. sklearn "joblib" (also reads pickles written by joblib) or "pickle".
    format: ArtifactFormat | None = None


class Scaling(_Strict):
    """Standardisation applied to the input before the model: ``(x - mean) / std``."""

    # A NaN here would turn every request into NaN after the request's own NaN check passed.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    mean: list[float]
    std: list[float]

    @model_validator(mode="after")
    def _check(self) -> Scaling:
        if len(self.mean) != len(self.std):
            raise ValueError(f"mean has {len(self.mean)} values but std has {len(self.std)}")
        if any(s == 0 for s in self.std):
            raise ValueError("std values must be non-zero")
        return self


class Preprocessing(_Strict):
    # Column order for v1 `instances` given as objects ({"sepal_length": 5.1, ...}).
    feature_order: list[str] | None = None
    scaling: Scaling | None = None
    # Cast the input to this datatype before the model (e.g. FP64 payloads into an FP32 network).
    cast: Datatype | None = None


class Runtime(_Strict):
    # auto = the first CUDA device when torch sees one, else the CPU.
    device: str = "auto"
    # Half precision on GPU only; ignored (with a log line) on the CPU where it is slower.
    half_precision: bool = False
    # Threads for one model call (torch intra-op, onnxruntime intra-op, XGBoost nthread, LightGBM
    # num_threads); 0 keeps the framework's default, which for the boosters is every core of the node.
    threads: Annotated[int, Field(ge=0)] = 0
    # torch on CUDA: capture the model as CUDA graphs at load, one per batch-size bucket; for models
    # whose rows do not mix (each row's output depends on that row only) and fixed input shapes.
    cuda_graphs: bool = False
    # tensorflow: the SavedModel signature to serve; unset means "serving_default".
    signature: Annotated[str, Field(min_length=1)] | None = None

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str) -> str:
        return check_device(value)


class ModelSpec(_Strict):
    """The whole manifest of one model directory."""

    name: str
    version: str = "1"
    framework: Framework
    artifact: Artifact
    inputs: Annotated[list[TensorSpec], Field(min_length=1)]
    outputs: Annotated[list[OutputSpec], Field(min_length=1)]
    # Class names, index-aligned with the model's classes; they name the classes in the prediction metrics.
    labels: list[str] | None = None
    # The inputs' reference distributions (`servekit-model profile`), for the drift gauges.
    profile: HashedFile | None = None
    preprocessing: Preprocessing = Preprocessing()
    runtime: Runtime = Runtime()

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _MODEL_NAME.fullmatch(value):
            raise ValueError(
                f"name must be lowercase letters, digits, '-', '_' or '.', at most 63 characters, got {value!r}"
            )
        return value

    @model_validator(mode="after")
    def _check_tensors(self) -> ModelSpec:
        for group, tensors in (("inputs", self.inputs), ("outputs", self.outputs)):
            names = [t.name for t in tensors]
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{group} names must be unique, repeated: {duplicates}")
        fmt = self.artifact.format
        if fmt is not None and fmt not in FORMATS_BY_FRAMEWORK[self.framework]:
            raise ValueError(
                f"artifact.format {fmt!r} is not a {self.framework} format; "
                f"expected one of {list(FORMATS_BY_FRAMEWORK[self.framework])}"
            )
        if self.framework in SELF_DESCRIBED:
            derived = [o.name for o in self.outputs if o.source != "raw"]
            if derived:
                raise ValueError(
                    f"{self.framework} outputs are the model's own (source: raw); {derived} ask for another source"
                )
        if self.runtime.signature is not None and self.framework != "tensorflow":
            raise ValueError(f"runtime.signature is for tensorflow models, this one is {self.framework}")
        if self.runtime.cuda_graphs and self.framework != "torch":
            raise ValueError(f"runtime.cuda_graphs is for torch models, this one is {self.framework}")
        pre = self.preprocessing
        if (pre.feature_order or pre.scaling or pre.cast) and len(self.inputs) != 1:
            raise ValueError("feature_order, scaling and cast need exactly one input tensor")
        if pre.feature_order is not None:
            repeated = sorted({f for f in pre.feature_order if pre.feature_order.count(f) > 1})
            if repeated:
                raise ValueError(f"feature_order names must be unique, repeated: {repeated}")
            width = _feature_width(self.inputs[0])
            if width is not None and width != len(pre.feature_order):
                raise ValueError(
                    f"feature_order has {len(pre.feature_order)} names but input "
                    f"{self.inputs[0].name!r} has {width} features (shape {self.inputs[0].shape})"
                )
        if pre.scaling is not None:
            width = _feature_width(self.inputs[0])
            if width is not None and width != len(pre.scaling.mean):
                raise ValueError(
                    f"scaling has {len(pre.scaling.mean)} values but input {self.inputs[0].name!r} has {width}"
                )
        return self

    def input_named(self, name: str) -> TensorSpec | None:
        return next((t for t in self.inputs if t.name == name), None)


def _feature_width(tensor: TensorSpec) -> int | None:
    """Features per row for a [-1, F] tensor; None when the row is not one fixed-size vector."""
    if len(tensor.shape) == 2 and tensor.shape[1] > 0:
        return tensor.shape[1]
    return None


def parse_spec(data: Any, source: str = MANIFEST_NAME) -> ModelSpec:
    """Validate manifest data, turning pydantic's report into one readable message."""
    if not isinstance(data, dict):
        raise SpecError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe_errors(exc)}") from None


def describe_errors(exc: ValidationError) -> str:
    """pydantic's errors as one line: where, what was wrong and, for short scalar values, the value."""
    problems = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "<root>"
        value = err.get("input")
        shown = f" (got {value!r})" if isinstance(value, (str, int, float, bool)) and len(repr(value)) < 80 else ""
        problems.append(f"{where}: {err['msg']}{shown}")
    return "; ".join(problems)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses repeated keys, which plain YAML loading resolves silently (last wins)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_spec(model_dir: str | Path) -> ModelSpec:
    """Read and validate ``model.yaml`` from a model directory."""
    path = Path(model_dir) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"no {MANIFEST_NAME} in model directory {str(model_dir)!r}") from None
    except UnicodeDecodeError as exc:
        raise SpecError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise SpecError(f"cannot read {path}: {exc.strerror}") from None
    return spec_from_text(text, str(path))


def spec_from_text(text: str, source: str) -> ModelSpec:
    """Validate a manifest's text; ``source`` (a path, a URI) names it in errors."""
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: no arbitrary objects
    except yaml.YAMLError as exc:
        raise SpecError(f"{source}: not valid YAML: {exc}") from None
    return parse_spec(data, source)


def dump_spec(spec: ModelSpec, model_dir: str | Path) -> Path:
    """Write a manifest (used by the example-model builders and tests)."""
    path = Path(model_dir) / MANIFEST_NAME
    data = spec.model_dump(mode="json", exclude_defaults=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
