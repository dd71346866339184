# The verbs a user types. `make serve` and `make test` work on a fresh machine with Python 3.11.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# MODEL=iris (scikit-learn, the default), digits (PyTorch), iris-onnx (ONNX), cancer (XGBoost), wine (LightGBM),
# iris-tf (TensorFlow SavedModel; needs the tensorflow extra)
MODEL ?= iris
HTTP_PORT ?= 8080
GRPC_PORT ?= 8081
PYTEST_ARGS ?=
# e.g. E2E_ARGS=--keep to leave the kind cluster up after `make e2e`
E2E_ARGS ?=
# Where `make image-archives` writes the images' tar archives for containerd (hack/image/export.sh).
IMAGE_CACHE ?= $(or $(SERVEKIT_IMAGE_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/servekit/images)
# e.g. BENCH_ARGS=--quick for a short smoke run (`python -m tests.bench --help` lists the flags;
# `make bench-gpu BENCH_ARGS="--matrix full"` for the GPU benchmark)
BENCH_ARGS ?=

.PHONY: help serve models test test-tools lint unit integration chart manifests bench bench-gpu bench-formats soak e2e image images image-archives image-archives-if-tools image-tools clean cluster-build cluster-build-if-go cluster-up cluster-down kserve-reference

help: ## list the verbs
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/bin/activate:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# Stamps: reinstall only when pyproject.toml changes.
$(VENV)/.serve-installed: pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install -q -e '.[torch,onnx,xgboost,lightgbm,examples]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/activate
	$(PY) -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.serve-installed

models/iris/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples sklearn --out models/iris

models/digits/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples torch --out models/digits

models/iris-onnx/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples onnx --out models/iris-onnx

models/cancer/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples xgboost --out models/cancer

models/wine/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples lightgbm --out models/wine

# TensorFlow is not in the serve install (about 1.4 GB installed): `pip install -e '.[tensorflow]'` first.
models/iris-tf/model.yaml: | $(VENV)/.serve-installed
	$(PY) -m predictor.examples tensorflow --out models/iris-tf

models: models/iris/model.yaml models/digits/model.yaml models/iris-onnx/model.yaml models/cancer/model.yaml models/wine/model.yaml ## build every example model from packaged data

serve: $(VENV)/.serve-installed models/$(MODEL)/model.yaml ## serve an example model (MODEL=iris|digits|iris-onnx|cancer|wine|iris-tf) on :8080 REST, :8081 gRPC
	$(PY) -m predictor --model_dir models/$(MODEL) --http_port $(HTTP_PORT) --grpc_port $(GRPC_PORT) --log_format text

test-tools: ## the tools the tests use: shellcheck, prometheus, wrk (apt-get when root); actionlint (built with Go)
	bash hack/install-test-tools.sh
	bash hack/install-actionlint.sh --optional

lint: $(VENV)/.dev-installed test-tools ## ruff, mypy, shellcheck
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	shellcheck hack/*.sh hack/lib/*.sh hack/controlplane/*.sh hack/image/*.sh .ci/run

test: lint kserve-reference cluster-build-if-go image-archives-if-tools ## lint, then every test that can run on this machine
	$(VENV)/bin/pytest $(PYTEST_ARGS)

# The chart tests validate against the pinned KServe release's CRD, copied from its Go module;
# without go, point KSERVE_CRD_DIR at a folder that has it (the chart tests say so when it is missing).
kserve-reference:
	@bash hack/fetch-kserve-crds.sh || echo "make: carrying on without KServe's CRD: the chart tests will fail"

# The control plane's components are built here, with progress, before pytest runs: a cold build
# takes far longer than a test's timeout. Without Go the cluster tests skip, saying so.
cluster-build-if-go:
	@if command -v go >/dev/null 2>&1; then bash hack/controlplane.sh build; \
	else echo "make: no 'go' on PATH: the cluster tests (tests/cluster) will be skipped"; fi

cluster-build: ## build the control plane's components from their Go modules (once; cached outside the repo)
	bash hack/controlplane.sh build

cluster-up: ## start the control plane on 127.0.0.1 (etcd, API server, controllers, kwok, KServe, gateway, S3, DNS, Prometheus) and, as root, the real node
	bash hack/controlplane.sh up

cluster-down: ## stop the control plane and remove its state
	bash hack/controlplane.sh down

unit: $(VENV)/.dev-installed ## fast, pure tests only
	$(VENV)/bin/pytest tests/unit $(PYTEST_ARGS)

integration: $(VENV)/.dev-installed ## real server processes on loopback
	$(VENV)/bin/pytest tests/integration $(PYTEST_ARGS)

chart: $(VENV)/.dev-installed kserve-reference ## render and validate the Helm chart and the manifests
	$(VENV)/bin/pytest tests/chart $(PYTEST_ARGS)

manifests: $(VENV)/.dev-installed ## rewrite manifests/crd and manifests/canary-controller from the Helm chart (and its README table)
	$(PY) hack/gen-manifests.py
	$(PY) hack/gen-chart-readme.py

bench: $(VENV)/.dev-installed ## throughput/latency against KServe, MLServer and a bare ASGI app (writes results/)
	$(PY) -m tests.bench $(BENCH_ARGS)

bench-gpu: $(VENV)/.dev-installed ## GPU benchmark: batching, workers, FP16, CUDA graphs on a transformer (needs a CUDA GPU)
	$(PY) -m tests.bench --gpu $(BENCH_ARGS)

bench-formats: $(VENV)/.dev-installed ## each model format's runtime against its framework called directly, and served under load
	$(PY) -m tests.bench --formats $(BENCH_ARGS)

soak: $(VENV)/.dev-installed test-tools ## 60 s at high concurrency against a real server: 0 errors, memory flat (prints the figures)
	SERVEKIT_SOAK=1 $(VENV)/bin/pytest tests/soak -m soak -s $(PYTEST_ARGS)

e2e: ## kind cluster: install KServe, deploy with Helm, infer, canary, tear down (needs docker, kind, kubectl, helm)
	bash hack/e2e.sh $(E2E_ARGS)

# The builder: `docker build` when a Docker engine answers, else buildah (daemonless, as root), whose
# base image comes from Debian's packages (mmdebstrap). SERVEKIT_IMAGE_BUILDER=docker|buildah picks one.
# Each image is skipped when its cache key (a hash of its inputs) matches: a warm run takes seconds.
image: ## build servekit/predictor:dev (docker if an engine answers, else buildah: no Docker needed)
	bash hack/image/build.sh predictor

images: ## build the predictor, canary-controller, storage-initializer and pause images (same builder as `make image`)
	bash hack/image/build.sh all

image-archives: images ## export the four images for `ctr -n k8s.io images import` to $(IMAGE_CACHE)
	bash hack/image/export.sh servekit/predictor:dev $(IMAGE_CACHE)/predictor.tar
	bash hack/image/export.sh servekit/canary-controller:dev $(IMAGE_CACHE)/canary-controller.tar
	bash hack/image/export.sh servekit/storage-initializer:dev $(IMAGE_CACHE)/storage-initializer.tar
	bash hack/image/export.sh localhost/servekit/pause:3.10 $(IMAGE_CACHE)/pause.tar

# For `make test`: the archives tests/image checks, built where a builder can run (docker, or
# buildah as root); elsewhere those tests skip, saying so.
image-archives-if-tools:
	@if { command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; } || \
	   { command -v buildah >/dev/null 2>&1 && [ "$$(id -u)" -eq 0 ]; }; then $(MAKE) --no-print-directory image-archives; \
	else echo "make: no Docker engine and no buildah as root: the image tests (tests/image) will be skipped"; fi

image-tools: ## install buildah, mmdebstrap, containerd, runc, the CNI plugins, gcc (apt-get, as root)
	bash hack/image/install-tools.sh

clean: ## remove the virtualenv, models and results
	rm -rf $(VENV) models results .pytest_cache .mypy_cache .ruff_cache *.egg-info
