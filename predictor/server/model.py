"""The KServe model: wires the manifest, checks, batcher and runtime into ``kserve.Model``.

Data path: KServe decodes v1 JSON / v2 REST / v2 gRPC -> ``preprocess`` checks the tensors
against the manifest -> ``predict`` hands them to the dynamic batcher, which runs the runtime off
the event loop -> ``postprocess`` shapes the declared outputs for the protocol the request used.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model
from kserve.errors import InvalidInput, ModelNotReady
from kserve.model import InferenceVerb
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb

from predictor.asgi import request_id
from predictor.batching import BatcherClosedError, BatchingConfig, DynamicBatcher, QueueFullError, Tensors
from predictor.modeldir.preprocessing import apply_transforms, instances_to_tensor
from predictor.modeldir.spec import ModelSpec, load_spec
from predictor.monitoring import tracing
from predictor.monitoring.monitor import ModelMonitor, MonitoringSettings
from predictor.monitoring.reference import ProfileError
from predictor.protocol.errors import Overloaded, StartupError, model_fault
from predictor.protocol.grpc_raw import grpc_infer_response
from predictor.protocol.v2_codec import loads_json
from predictor.protocol.validation import InputError, RawTensor, json_decoder, select_outputs, validate_inputs
from predictor.runtimes import ModelRuntime, load_runtime
from predictor.server.metrics import ModelMetrics
from predictor.server.settings import PredictorSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodedRequest:
    """A checked request on its way through the handlers."""

    inputs: Tensors
    outputs: list[str]
    protocol: str  # "v1", "v2" or "grpc"
    request_id: str | None = None


@dataclass(frozen=True)
class Prediction:
    request: DecodedRequest
    outputs: Tensors


def infer_input_tensor(infer_input: Any) -> RawTensor:
    """A KServe ``InferInput`` (REST JSON, binary extension or gRPC contents) as a raw tensor.

    Values that arrived as a list (JSON, gRPC typed contents) take the same exact decoder as the
    lean route, so both routes accept and refuse the same requests with the same words; raw bytes
    (binary extension, gRPC raw contents) are KServe's to decode.
    """
    name, shape = infer_input.name, list(infer_input.shape)
    # KServe keeps binary-extension and gRPC raw_input_contents bytes in _raw_data (no public
    # accessor) and leaves .data an empty list then.
    if getattr(infer_input, "_raw_data", None) is None and isinstance(infer_input.data, list):
        return RawTensor(name, infer_input.datatype, shape, json_decoder(infer_input.data, shape, name))

    def decode(_: np.dtype[Any]) -> np.ndarray:
        try:
            return np.asarray(infer_input.as_numpy())
        except ValueError as exc:  # numpy's reshape error names both sizes
            raise InputError(f"input {name!r}: data does not fit shape {shape}: {exc}") from None

    return RawTensor(name, infer_input.datatype, shape, decode)


def _answer_ids(current: str | None, body_id: str | None) -> tuple[str, ...]:
    """The ids an answer is kept under for feedback: the request id, and a v2 body's own id if it differs."""
    ids = tuple(i for i in (current, body_id) if i)
    return ids if len(ids) < 2 or ids[0] != ids[1] else ids[:1]


class ServingModel(Model):  # type: ignore[misc]
    """One model directory served over v1, v2 REST and v2 gRPC."""

    def __init__(self, settings: PredictorSettings) -> None:
        self.settings = settings
        self.spec: ModelSpec = load_spec(settings.model_dir)
        super().__init__(settings.model_name or self.spec.name)
        self.runtime: ModelRuntime | None = None
        self.metrics = ModelMetrics(self.name)
        # Declared datatype of each output, looked up per response by both v2 routes.
        self.output_datatypes: dict[str, str] = {o.name: o.datatype for o in self.spec.outputs}
        self._batcher: DynamicBatcher | None = None
        self._closing: asyncio.Task[None] | None = None
        self.monitor: ModelMonitor | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def load(self) -> bool:
        runtime = load_runtime(
            self.spec, self.settings.model_dir, self.settings.device, max_batch_size=self.settings.max_batch_size
        )
        self._check_outputs(runtime)
        self.runtime = runtime
        if self.settings.monitoring:
            try:
                self.monitor = ModelMonitor(self.name, self.spec, self.settings.model_dir, self._monitoring_settings())
            except ProfileError as exc:
                raise StartupError(str(exc)) from None
            self.monitor.start()
        if self.settings.batching:
            config = BatchingConfig(
                max_batch_size=self.settings.max_batch_size,
                max_latency_ms=self.settings.max_latency_ms,
                max_queue_size=self.settings.max_queue_size,
            )
        else:  # one request per model call, still off the event loop and still queue-bounded
            config = BatchingConfig(max_batch_size=1, max_latency_ms=0, max_queue_size=self.settings.max_queue_size)
        self._batcher = DynamicBatcher(self._run_batch, config, name=self.name, on_batch=self.metrics.observe_batch)
        batcher = self._batcher
        self.metrics.track_queue_depth(lambda: batcher.queue_depth)
        self.ready = True
        logger.info("model %s (%s) ready on %s; batching %s", self.name, self.spec.framework, runtime.device, config)
        return self.ready

    def _monitoring_settings(self) -> MonitoringSettings:
        s = self.settings
        return MonitoringSettings(
            s.drift_window, s.drift_interval_s, s.feedback_ttl_s, s.feedback_max_answers, s.accuracy_window
        )

    def _check_outputs(self, runtime: ModelRuntime) -> None:
        """Run one zero row through the model so a manifest that lies about outputs fails at start-up."""
        sample = {
            t.name: np.zeros([1 if d == -1 else d for d in t.shape], dtype=t.numpy_dtype) for t in self.spec.inputs
        }
        try:
            outputs = runtime.predict(apply_transforms(self.spec, sample))
        except Exception as exc:
            raise StartupError(
                f"model {self.name!r} failed on a sample input built from the manifest's inputs: "
                f"{type(exc).__name__}: {exc}"
            ) from None
        for out in self.spec.outputs:
            array = outputs.get(out.name)
            want = [1 if d == -1 else d for d in out.shape]
            if array is None or list(array.shape) != want:
                got = None if array is None else list(array.shape)
                raise StartupError(
                    f"output {out.name!r}: the model returned shape {got} for one row, "
                    f"the manifest declares {out.shape}"
                )

    def stop(self) -> None:
        """On SIGTERM (KServe calls this from its signal handler, on the loop's thread): answer what
        is queued, then release the batcher's thread, while uvicorn drains open connections."""
        if self._batcher is not None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                pass  # no loop (never served): nothing can be queued
            else:
                self._closing = loop.create_task(self._batcher.close(drain=True))
        if self.monitor is not None:
            self.monitor.stop()
        super().stop()

    # ---- metadata ----------------------------------------------------------------------------

    def get_input_types(self) -> list[dict[str, Any]]:
        return [t.metadata() for t in self.spec.inputs]

    def get_output_types(self) -> list[dict[str, Any]]:
        return [t.metadata() for t in self.spec.outputs]

    # ---- inference ---------------------------------------------------------------------------

    def _run_batch(self, inputs: Tensors) -> Tensors:
        """The batcher's model call; runs in its worker thread."""
        assert self.runtime is not None
        outputs = self.runtime.predict(apply_transforms(self.spec, inputs))
        if self.monitor is not None:
            self.monitor.observe_call(inputs, outputs)
        return outputs

    async def infer_arrays(self, inputs: Tensors, body_id: str | None = None) -> Tensors:
        """Checked inputs in, every declared output out, through the batcher.

        The answer is kept for feedback under the request id and ``body_id`` (a v2 body's own ``id``).
        """
        assert self._batcher is not None
        # Tracing only: the batcher stamps when this request's model call ran, to split queue and model time.
        model_call_ns: list[int] | None = [] if tracing.enabled() else None
        submitted_ns = time.time_ns() if model_call_ns is not None else 0
        try:
            outputs = await self._batcher.submit(inputs, model_call_ns)
        except QueueFullError as exc:
            self.metrics.rejections.inc()
            raise Overloaded(self.name, self.settings.max_queue_size, exc.retry_after_s) from None
        except InputError as exc:
            raise InvalidInput(str(exc)) from None
        except BatcherClosedError:
            raise ModelNotReady(self.name, "the server is shutting down") from None
        except Exception as exc:  # the model's own failure, on this request alone (the batcher isolated it)
            fault = model_fault(self.name, exc)
            logger.error("%s", fault.details, exc_info=exc)
            raise fault from exc
        if model_call_ns:
            tracing.record("queue wait", submitted_ns, model_call_ns[0])
            tracing.record("model call", model_call_ns[0], model_call_ns[1])
        if self.monitor is not None:
            self.monitor.remember(_answer_ids(request_id.current(), body_id), outputs)
        return outputs

    def response_id(self, own: str | None) -> str:
        """A v2 response's id: the request's own, else the request id the logs and headers carry."""
        return own or request_id.current() or str(uuid.uuid4())

    def decode_v2(self, request: InferRequest, body_bytes: int) -> DecodedRequest:
        try:
            inputs = validate_inputs(self.spec, (infer_input_tensor(i) for i in request.inputs), body_bytes)
            requested = [o.name for o in request.request_outputs or []]
            outputs = select_outputs(self.spec, requested)
        except InputError as exc:
            raise InvalidInput(str(exc)) from None
        return DecodedRequest(inputs, outputs, "grpc" if request.from_grpc else "v2", request.id)

    def decode_v1(self, body: Any) -> DecodedRequest:
        if isinstance(body, (bytes, bytearray)):
            # KServe hands over raw bytes when the content type is not JSON (curl -d sends a form type).
            try:
                body = loads_json(body)
            except InputError as exc:
                raise InvalidInput(str(exc)) from None
        if not isinstance(body, dict):
            raise InvalidInput(f"a v1 request is a JSON object with 'instances', got {type(body).__name__}")
        if "instances" not in body:
            raise InvalidInput(f"a v1 request needs 'instances', got keys {sorted(body)}")
        try:
            inputs = validate_inputs(self.spec, [instances_to_tensor(self.spec, body["instances"])])
        except InputError as exc:
            raise InvalidInput(str(exc)) from None
        return DecodedRequest(inputs, [self.spec.outputs[0].name], "v1")

    async def preprocess(self, payload: Any, headers: dict[str, str] | None = None) -> DecodedRequest:
        with tracing.span("decode"):
            if isinstance(payload, InferRequest):
                return self.decode_v2(payload, self._request_bytes(payload, headers))
            return self.decode_v1(payload)

    def _request_bytes(self, request: InferRequest, headers: dict[str, str] | None) -> int:
        """The REST body's length when known, else the most any request may have (gRPC, chunked)."""
        declared = (headers or {}).get("content-length", "")
        if not request.from_grpc and declared.isdigit():
            return int(declared)
        return self.settings.max_body_bytes

    def validate(self, payload: Any) -> Any:
        # KServe's base check looks for raw JSON keys; ours ran in preprocess on typed data.
        return payload

    async def predict(
        self, payload: DecodedRequest, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> Prediction:
        outputs = await self.infer_arrays(payload.inputs, payload.request_id)
        return Prediction(payload, outputs)

    async def postprocess(
        self, result: Prediction, headers: dict[str, str] | None = None, response_headers: Any = None
    ) -> dict[str, Any] | InferResponse | pb.ModelInferResponse:
        with tracing.span("encode"):
            return self._encode(result)

    def _encode(self, result: Prediction) -> dict[str, Any] | InferResponse | pb.ModelInferResponse:
        request = result.request
        if request.protocol == "v1":
            return {"predictions": result.outputs[request.outputs[0]].tolist()}
        if request.protocol == "grpc":
            outputs = [(name, self.output_datatypes[name], result.outputs[name]) for name in request.outputs]
            return grpc_infer_response(self.name, self.spec.version, self.response_id(request.request_id), outputs)
        infer_outputs = []
        for name in request.outputs:
            array = result.outputs[name]
            output = InferOutput(name=name, shape=list(array.shape), datatype=self.output_datatypes[name])
            output.set_data_from_numpy(array, binary_data=False)
            infer_outputs.append(output)
        return InferResponse(
            response_id=self.response_id(request.request_id),
            model_name=self.name,
            model_version=self.spec.version,
            infer_outputs=infer_outputs,
        )

    async def __call__(
        self, body: Any, headers: dict[str, str] | None = None, verb: InferenceVerb = InferenceVerb.PREDICT
    ) -> Any:
        """KServe's handler chain, plus the request counter and latency histogram by protocol."""
        protocol = ("grpc" if body.from_grpc else "v2") if isinstance(body, InferRequest) else "v1"
        with self.metrics.counted_request(protocol):
            return await super().__call__(body, headers, verb)
