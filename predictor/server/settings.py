"""Server settings: one typed object, filled from flags, then ``PREDICTOR_*`` variables, then defaults.

Kubernetes users set environment variables in the pod spec; laptop users pass flags. Both land
here, so every option has one name, one type and one default.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from predictor.modeldir.spec import check_device


class PredictorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="PREDICTOR_", extra="forbid", protected_namespaces=())

    model_dir: Path = Field(Path("/mnt/models"), description="Directory with model.yaml and the artifact.")
    model_name: str | None = Field(None, description="Name on the endpoint path; default: the manifest's name.")
    device: str | None = Field(None, description="auto, cpu, cuda or cuda:N; default: the manifest's runtime.device.")
    batching: bool = Field(True, description="Merge concurrent requests into one model call.")
    max_batch_size: Annotated[int, Field(ge=1, description="Most rows in one merged batch.")] = 32
    # 0 (as Triton's default) never holds a request back: a batch is whatever queued while the model
    # was busy, so an idle server answers at once and a loaded one batches by itself.
    max_latency_ms: Annotated[
        float, Field(ge=0, description="Longest a request waits for batch-mates before its batch runs.")
    ] = 0.0
    max_queue_size: Annotated[int, Field(ge=1, description="Requests waiting before new ones get 503.")] = 1024
    fast_path: bool = Field(True, description="Serve v2 REST JSON infer on the lean route (same protocol).")
    # One log line per request costs ~10% of a small model's throughput; metrics count every request.
    access_log: bool = Field(False, description="Log every HTTP request (uvicorn's access log).")
    # Text for a terminal; the image sets json, one object per line for the cluster's log pipeline.
    log_format: Literal["json", "text"] = Field("text", description="Log lines as JSON objects or as text.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe level logged; per-request lines appear at debug."
    )
    auth_token_file: Path | None = Field(
        None, description="File of accepted bearer tokens, one per line; unset: no authentication."
    )
    # Large enough for a batch of images as JSON, small enough that a few concurrent oversized
    # bodies cannot exhaust a pod's memory before the model sees them.
    max_body_bytes: Annotated[
        int, Field(ge=1024, description="Largest REST body and gRPC message accepted, in bytes.")
    ] = 64 * 1024 * 1024
    # One Python process in front of a GPU cannot keep it busy; N processes, each with its own
    # model copy and batcher, share the pod's ports (see predictor/workers/).
    workers: Annotated[int, Field(ge=1, description="Server processes in this pod, sharing its ports.")] = 1
    # Model monitoring (predictor/monitoring/): prediction metrics, input drift, feedback.
    monitoring: bool = Field(
        True, description="Count predictions, watch input drift and take feedback (off: none of them)."
    )
    drift_window: Annotated[
        int, Field(ge=100, description="Most recent input rows whose PSI against the profile is published.")
    ] = 1000
    drift_interval_s: Annotated[
        float, Field(gt=0, description="Seconds between two computations of the input drift gauges.")
    ] = 10.0
    feedback_ttl_s: Annotated[
        float, Field(gt=0, description="Seconds an answer is kept for its feedback (ground truth).")
    ] = 3600.0
    feedback_max_answers: Annotated[
        int, Field(ge=1, description="Most answers kept for feedback; the oldest go first.")
    ] = 100_000
    accuracy_window: Annotated[
        int, Field(ge=1, description="Rows with feedback that servekit_live_accuracy is the mean of.")
    ] = 1000

    @field_validator("device")
    @classmethod
    def _check_device(cls, value: str | None) -> str | None:
        return None if value is None else check_device(value)
