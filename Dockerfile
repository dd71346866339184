# syntax=docker/dockerfile:1
#
# The servekit predictor image: `python -m predictor` serving one model directory, and the
# `servekit-canary` tool (CLI and controller) for canary rollouts.
#
#   docker build -t servekit/predictor:0.1.0 .                                  # CPU (scikit-learn)
#   docker build --build-arg VARIANT=cuda -t servekit/predictor:0.1.0-cuda .    # adds PyTorch with CUDA
#
# Model: the iris example is baked in at /opt/servekit/models/iris and PREDICTOR_MODEL_DIR points
# there. With an InferenceService `STORAGE_URI` (the chart's model.storageUri), KServe's storage
# initializer downloads the model into /mnt/models and the chart sets PREDICTOR_MODEL_DIR=/mnt/models.
#
# Runtime contract (see docs/deploy.md): runs as UID/GID 65532, works with a read-only root
# filesystem; the only writable path is /tmp (mount an emptyDir there).

# Both stages must use the same Python so the virtualenv copied between them stays valid.
# Pin a digest for reproducible builds: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
# The default names the `python-base` stage below: Dependabot reads only literal FROM lines (it
# does not expand ARGs), so the default base image sits on one of its own, where it is kept current.
ARG PYTHON_IMAGE=python-base

FROM python:3.11-slim-bookworm AS python-base

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# cpu: scikit-learn runtime only (small). cuda: also PyTorch; its Linux wheels from the default
# index bundle the CUDA runtime libraries, the node's NVIDIA driver is injected at run time.
# Both carry the canary extra: `servekit-canary` (the chart's canary controller runs this image).
ARG VARIANT=cpu

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src

# Metadata first, code second: only the distribution's own files are in the build context
# (.dockerignore is an allow-list).
COPY pyproject.toml README.md ./
COPY predictor ./predictor

RUN case "${VARIANT}" in \
      cpu)  extras="[canary]" ;; \
      cuda) extras="[canary,torch]" ;; \
      *)    echo "VARIANT must be cpu or cuda, got '${VARIANT}'" >&2; exit 1 ;; \
    esac \
 && /opt/venv/bin/pip install ".${extras}"

# The example model is built from data scikit-learn ships: nothing is downloaded.
RUN /opt/venv/bin/python -m predictor.examples sklearn --out /opt/servekit/models/iris

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG VARIANT=cpu

LABEL org.opencontainers.image.title="servekit-predictor" \
      org.opencontainers.image.description="KServe custom predictor for scikit-learn and PyTorch models (Open Inference Protocol v2, v1)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.servekit.variant="${VARIANT}"

# A named user for tools that look the UID up (getpass, torch); pods still run by number.
RUN groupadd --system --gid 65532 servekit \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin servekit

COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/servekit /opt/servekit

# Everything the process writes goes to /tmp; the root filesystem may be read-only. Logs are one
# JSON object per line for the cluster's log pipeline (--log_format text for a terminal).
ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    MPLCONFIGDIR=/tmp/matplotlib \
    TORCHINDUCTOR_CACHE_DIR=/tmp/torchinductor \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility \
    PREDICTOR_MODEL_DIR=/opt/servekit/models/iris \
    PREDICTOR_LOG_FORMAT=json

USER 65532:65532
WORKDIR /tmp

# 8080: REST (v2, v1, health, /metrics); 8081: gRPC v2.
EXPOSE 8080 8081

ENTRYPOINT ["python", "-m", "predictor"]
