# syntax=docker/dockerfile:1
#
# servekit's two images, one Dockerfile:
#
#   docker build -t servekit/predictor:0.1.0 .                                  # CPU (scikit-learn)
#   docker build --build-arg VARIANT=cuda -t servekit/predictor:0.1.0-cuda .    # adds PyTorch with CUDA
#   docker build --target controller -t servekit/canary-controller:0.1.0 .      # `servekit-canary`
#
# The predictor (the last stage, so the default target): `python -m predictor` serving one model
# directory, with servekit's base dependencies only: no canary or backup extra, so nothing the
# canary controller or the backup tool alone needs (kopf, rich, helm-python-sdk, boto3).
# The canary controller (`--target controller`): `servekit-canary` with the canary extra and the
# few base dependencies it imports, without KServe, scikit-learn or PyTorch.
#
# Model: the iris example is baked in at /opt/servekit/models/iris and PREDICTOR_MODEL_DIR points
# there. With an InferenceService `STORAGE_URI` (the chart's model.storageUri), KServe's storage
# initializer downloads the model into /mnt/models and the chart sets PREDICTOR_MODEL_DIR=/mnt/models.
#
# Runtime contract of both images (see docs/deploy.md): runs as UID/GID 65532, works with a
# read-only root filesystem; the only writable path is /tmp (mount an emptyDir there).

# Every stage must use the same Python so the virtualenv copied between them stays valid.
# Pin a digest for reproducible builds: --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:...
# The default names the `python-base` stage below: Dependabot reads only literal FROM lines (it
# does not expand ARGs), so the default base image sits on one of its own, where it is kept current.
ARG PYTHON_IMAGE=python-base

FROM python:3.11-slim-bookworm AS python-base

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS build

# cpu: scikit-learn runtime only (small). cuda: also PyTorch; its Linux wheels from the default
# index bundle the CUDA runtime libraries, the node's NVIDIA driver is injected at run time.
# Neither installs the canary or backup extra: the controller has its own image (below).
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
      cpu)  extras="" ;; \
      cuda) extras="[torch]" ;; \
      *)    echo "VARIANT must be cpu or cuda, got '${VARIANT}'" >&2; exit 1 ;; \
    esac \
 && /opt/venv/bin/pip install ".${extras}"

# The example model is built from data scikit-learn ships: nothing is downloaded.
RUN /opt/venv/bin/python -m predictor.examples sklearn --out /opt/servekit/models/iris

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS controller-build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src

# What servekit-canary imports: the canary extra and the base dependencies pyproject.toml names
# under [tool.servekit.controller-image], with pyproject.toml's own version ranges. Before the
# code is copied, so a change under predictor/ reuses this layer.
COPY pyproject.toml README.md ./
COPY hack/image/controller-requirements.py ./
RUN /opt/venv/bin/python controller-requirements.py pyproject.toml >requirements.txt \
 && /opt/venv/bin/pip install --requirement requirements.txt

# Then servekit itself without its dependencies: they would bring KServe and scikit-learn.
COPY predictor ./predictor
RUN /opt/venv/bin/pip install --no-deps .

# ---------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS controller

LABEL org.opencontainers.image.title="servekit-canary-controller" \
      org.opencontainers.image.description="servekit-canary: canary rollouts of KServe InferenceServices (CLI and kopf controller)" \
      org.opencontainers.image.licenses="Apache-2.0"

# The predictor's user, line for line (tests/chart/test_dockerfile.py compares them).
RUN groupadd --system --gid 65532 servekit \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
      --shell /usr/sbin/nologin servekit

COPY --from=controller-build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

USER 65532:65532
WORKDIR /tmp

# 8080: kopf's liveness endpoint (`--liveness`, the chart's probe).
EXPOSE 8080

ENTRYPOINT ["servekit-canary"]

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
