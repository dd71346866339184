"""Target (b): a plain custom KServe predictor, written the way KServe's custom-model docs show.

A ``kserve.Model`` subclass that loads the joblib artifact in ``load()`` and answers v2 requests
from ``predict(payload: InferRequest, headers)`` with an ``InferResponse``, served by
``kserve.ModelServer().start([model])``. No tuning: this is what a user gets by following the docs.

    python -m tests.bench.plain_kserve --model_dir DIR --model_name iris --http_port P --grpc_port G
"""

from __future__ import annotations

import argparse
import os

import joblib
import kserve
import numpy as np
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import generate_uuid


class SklearnIrisModel(Model):
    def __init__(self, name: str, model_dir: str) -> None:
        super().__init__(name)
        self.model_dir = model_dir
        self.model = None
        self.ready = False
        self.load()

    def load(self) -> bool:
        self.model = joblib.load(os.path.join(self.model_dir, "model.joblib"))
        self.ready = True
        return self.ready

    def predict(self, payload: InferRequest, headers: dict[str, str] | None = None) -> InferResponse:
        features = payload.inputs[0].as_numpy()
        label = np.asarray(self.model.predict(features), dtype=np.int64)
        probabilities = np.asarray(self.model.predict_proba(features), dtype=np.float32)

        label_out = InferOutput(name="label", shape=list(label.shape), datatype="INT64")
        label_out.set_data_from_numpy(label, binary_data=False)
        proba_out = InferOutput(name="probabilities", shape=list(probabilities.shape), datatype="FP32")
        proba_out.set_data_from_numpy(probabilities, binary_data=False)
        return InferResponse(
            response_id=payload.id or generate_uuid(), model_name=self.name, infer_outputs=[label_out, proba_out]
        )


def main() -> None:
    parser = argparse.ArgumentParser(parents=[kserve.model_server.parser])
    parser.add_argument("--model_dir", required=True, help="directory holding model.joblib")
    args, _ = parser.parse_known_args()
    model = SklearnIrisModel(args.model_name, args.model_dir)
    ModelServer().start([model])


if __name__ == "__main__":
    main()
