"""The monitoring of one served model: the one object ``ServingModel`` holds (see __init__.py).

Two calls sit on the request path, both cheap: ``observe_call`` once per model call in the
batcher's thread (prediction metrics, rows into the drift window), and ``remember`` once per
answered request on the event loop (the answer kept for feedback). Everything else (PSI, feedback
joins) runs on its own thread or on the feedback route.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from prometheus_client import Counter, Gauge

from predictor.modeldir.artifacts import verified_artifact_path
from predictor.modeldir.spec import ModelSpec
from predictor.monitoring.answers import AnswerStore, MemoryAnswers, SharedAnswers
from predictor.monitoring.drift import DriftMonitor
from predictor.monitoring.feedback import FeedbackError, Judged, judged_output, outcomes, parse_feedback
from predictor.monitoring.predictions import LabelNames, PredictionMetrics
from predictor.monitoring.reference import Profile, ProfileError

logger = logging.getLogger(__name__)

LIVE_ACCURACY = Gauge(
    "servekit_live_accuracy",
    "Share of correct answers among the last rows with feedback (mean absolute error for a regressor).",
    ["model"],
    # Workers share one outcome window (answers.py): the value last computed is the pod's.
    multiprocess_mode="mostrecent",
)
FEEDBACK = Counter(
    "servekit_feedback",
    "Feedback calls, by result: joined, unknown (no such answer, or expired), invalid.",
    ["model", "result"],
)
# Rows a drift window needs before its PSI means anything: with 10 bins, fewer would be noise.
MIN_DRIFT_ROWS = 100
FAULT_LOG_S = 60.0


@dataclass(frozen=True)
class MonitoringSettings:
    """The monitoring part of the server's settings (settings.py has their flags and help)."""

    drift_window: int = 1000
    drift_interval_s: float = 10.0
    feedback_ttl_s: float = 3600.0
    feedback_max_answers: int = 100_000
    accuracy_window: int = 1000


@dataclass(frozen=True)
class FeedbackAnswer:
    status: int
    body: dict[str, Any]


def load_profile(spec: ModelSpec, model_dir: Path) -> Profile | None:
    """The manifest's profile, hash checked, matching its inputs; raises ArtifactError or ProfileError."""
    if spec.profile is None:
        return None
    path = verified_artifact_path(model_dir, spec.profile, what="profile")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ProfileError(f"profile {str(path)!r} is not readable JSON: {exc}") from None
    profile = Profile.from_json(data, str(path))
    for name, reference in profile.inputs.items():
        tensor = spec.input_named(name)
        if tensor is None:
            raise ProfileError(f"profile {str(path)!r} describes input {name!r}, the manifest has no such input")
        width = _row_width(tensor.shape)
        if width is None:
            raise ProfileError(
                f"profile {str(path)!r} describes input {name!r}, whose shape {tensor.shape} has no fixed "
                "number of values per row: drift is measured per feature column"
            )
        if width != reference.width:
            raise ProfileError(
                f"profile {str(path)!r}: input {name!r} has {reference.width} features, "
                f"the manifest's shape {tensor.shape} has {width} per row"
            )
    return profile


def _row_width(shape: list[int]) -> int | None:
    rest = shape[1:]
    return int(np.prod(rest)) if all(d > 0 for d in rest) else None


def _answer_store(settings: MonitoringSettings) -> AnswerStore:
    """Pod-wide with --workers N (next to the workers' readiness board), else in this process."""
    from predictor.workers.board import WORKER_ENV, WorkerIdentity

    if WORKER_ENV in os.environ:
        run_dir = WorkerIdentity.from_env(os.environ[WORKER_ENV]).board.parent
        return SharedAnswers(
            run_dir / "answers.sqlite", settings.feedback_max_answers, settings.feedback_ttl_s, settings.accuracy_window
        )
    return MemoryAnswers(settings.feedback_max_answers, settings.feedback_ttl_s, settings.accuracy_window)


class ModelMonitor:
    def __init__(self, model: str, spec: ModelSpec, model_dir: Path, settings: MonitoringSettings) -> None:
        self.model = model
        self.names = LabelNames(spec.labels)
        self.predictions = PredictionMetrics(model, spec)
        profile = load_profile(spec, model_dir)
        self.drift = (
            None
            if profile is None
            else DriftMonitor(model, profile.inputs, settings.drift_window, settings.drift_interval_s, MIN_DRIFT_ROWS)
        )
        self.judged: Judged | None = judged_output(spec)
        self.answers: AnswerStore | None = None if self.judged is None else _answer_store(settings)
        self._feedback = {r: FEEDBACK.labels(model, r) for r in ("joined", "unknown", "invalid")}
        self._last_fault_log = -FAULT_LOG_S
        self._accuracy = LIVE_ACCURACY.labels(model)

    def start(self) -> None:
        self.predictions.start()
        if self.drift is not None:
            self.drift.start()

    def stop(self) -> None:
        self.predictions.stop()
        if self.drift is not None:
            self.drift.stop()

    # ---- the request path -------------------------------------------------------------------

    def observe_call(self, inputs: dict[str, np.ndarray], outputs: dict[str, np.ndarray]) -> None:
        """One successful model call: raw inputs and every declared output (batcher thread).

        A failure here is logged, never raised: the answers are right, and a monitoring fault
        must not turn them into 500s.
        """
        try:
            self.predictions.observe(outputs)
            if self.drift is not None:
                self.drift.observe(inputs)
        except Exception:
            now = time.monotonic()
            if now - self._last_fault_log >= FAULT_LOG_S:
                self._last_fault_log = now
                logger.exception("monitoring of model %s failed on a model call (logged once a minute)", self.model)

    def remember(self, ids: tuple[str, ...], outputs: dict[str, np.ndarray]) -> None:
        """Keep one request's answer for its feedback, under its request id (and body id)."""
        if self.answers is not None and self.judged is not None and ids:
            self.answers.put(ids, outputs[self.judged.name].reshape(-1).tolist())

    # ---- feedback ---------------------------------------------------------------------------

    async def feedback(self, document: Any) -> FeedbackAnswer:
        if self.answers is None or self.judged is None:
            self._feedback["invalid"].inc()
            return FeedbackAnswer(
                400, {"error": f"model {self.model!r} has no label or single-value output to give feedback on"}
            )
        try:
            given = parse_feedback(document, self.judged)
        except FeedbackError as exc:
            self._feedback["invalid"].inc()
            return FeedbackAnswer(400, {"error": str(exc)})
        answer = await asyncio.to_thread(self.answers.take, given.request_id)
        if answer is None:
            self._feedback["unknown"].inc()
            return FeedbackAnswer(
                404,
                {
                    "error": f"no answer with id {given.request_id!r} to join: unknown, older than "
                    f"{self.answers.ttl_s:g} s (--feedback_ttl_s), pushed out by newer answers, "
                    "or its feedback was already given"
                },
            )
        try:
            rows = outcomes(self.judged, self.names, answer, given.truth)
        except FeedbackError as exc:
            self.answers.put((given.request_id,), answer)  # kept: a corrected feedback may follow
            self._feedback["invalid"].inc()
            return FeedbackAnswer(400, {"error": str(exc)})
        live = await asyncio.to_thread(self.answers.record, rows)
        self._accuracy.set(live)
        self._feedback["joined"].inc()
        key = "correct" if self.judged.is_class else "absolute_errors"
        value: Any = int(sum(rows)) if self.judged.is_class else rows
        metric = "live_accuracy" if self.judged.is_class else "live_mean_absolute_error"
        return FeedbackAnswer(200, {"id": given.request_id, "rows": len(rows), key: value, metric: live})
