#!/usr/bin/env bash
# Shell functions shared by the hack/ scripts: messages, argument errors, tool checks,
# kubectl/helm bound to one context, waits and port-forwards.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   (from a hack/ script; not run on its own)
#
# A script that sources this file keeps its usage in its header comment (what `--help` prints),
# and parses its flags before it checks for tools, so `--help` works on a machine without docker
# or kind.
set -euo pipefail

if [[ -z "${BASH_VERSINFO:-}" || "${BASH_VERSINFO[0]}" -lt 4 ||
  ("${BASH_VERSINFO[0]}" -eq 4 && "${BASH_VERSINFO[1]}" -lt 4) ]]; then
  echo "error: bash >= 4.4 is required, this is ${BASH_VERSION:-not bash} (macOS: install a current bash, then run 'bash hack/...')" >&2
  exit 1
fi

# shellcheck disable=SC2034 # used by the scripts that source this file
SERVEKIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
SCRIPT_NAME="${SCRIPT_NAME:-$(basename "$0")}"

# kubectl and helm, with --context / --kube-context once use_kube_context has been called.
KUBE_CONTEXT=""
KUBECTL=(kubectl)
HELM=(helm)

# ---------------------------------------------------------------------------------------------
# Messages. Progress goes to stdout, problems to stderr; every line names the script.

log() {
  printf '%s: %s\n' "${SCRIPT_NAME}" "$*"
}

warn() {
  printf '%s: warning: %s\n' "${SCRIPT_NAME}" "$*" >&2
}

die() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit 1
}

# --help: the comment block at the top of the script, without the shebang and the leading '# '.
usage() {
  awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"
}

# A bad command line: the problem, the usage line, exit status 2.
usage_error() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2
  usage | grep '^Usage:' >&2 || true
  printf "Run '%s --help' for the options.\n" "$0" >&2
  exit 2
}

# need_value FLAG "$@": the flag's value, or a usage error when there is none.
need_value() {
  local flag="$1"
  shift
  if [[ $# -lt 1 || -z "$1" || "$1" == --* ]]; then
    usage_error "${flag} needs a value"
  fi
}

# ---------------------------------------------------------------------------------------------
# Tools.

tool_hint() {
  case "$1" in
    docker) echo "install Docker Engine (https://docs.docker.com/engine/install/)" ;;
    kind) echo "install kind ${KIND_VERSION:-v0.30.0} (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)" ;;
    kubectl) echo "install kubectl >= 1.29 (https://kubernetes.io/docs/tasks/tools/)" ;;
    helm) echo "install Helm ${HELM_VERSION:-v3.16.3} (https://helm.sh/docs/intro/install/)" ;;
    curl) echo "install curl with your system's package manager" ;;
    python3) echo "install Python 3 (the answers are checked with its json module)" ;;
    *) echo "install it and put it on PATH" ;;
  esac
}

# require_tools TOOL...: every missing tool is reported, then exit 1.
require_tools() {
  local tool missing=0
  for tool in "$@"; do
    if ! command -v "${tool}" >/dev/null 2>&1; then
      printf '%s: error: %s is required: %s\n' "${SCRIPT_NAME}" "${tool}" "$(tool_hint "${tool}")" >&2
      missing=1
    fi
  done
  if [[ "${missing}" -ne 0 ]]; then
    exit 1
  fi
}

# The docker client is not enough: kind and docker build need a running engine.
require_docker_engine() {
  require_tools docker
  local problem
  if ! problem="$(docker info --format '{{.ServerVersion}}' 2>&1)"; then
    die "docker is required: the docker client is installed but no engine answers ('docker info' failed: $(printf '%s' "${problem}" | tail -n 1)); start Docker or set DOCKER_HOST"
  fi
}

# warn_if_version_differs TOOL ACTUAL PINNED: other versions usually work; say which one is tested.
warn_if_version_differs() {
  local tool="$1" actual="$2" pinned="$3"
  if [[ "${actual}" != "${pinned}"* ]]; then
    warn "${tool} ${actual:-of unknown version} found; servekit is tested with ${tool} ${pinned}"
  fi
}

# ---------------------------------------------------------------------------------------------
# Cluster access.

# use_kube_context CONTEXT: every later kube/helm call targets CONTEXT ('' = kubectl's current one).
use_kube_context() {
  KUBE_CONTEXT="$1"
  KUBECTL=(kubectl)
  HELM=(helm)
  if [[ -n "${KUBE_CONTEXT}" ]]; then
    KUBECTL+=(--context "${KUBE_CONTEXT}")
    HELM+=(--kube-context "${KUBE_CONTEXT}")
  fi
}

kube() {
  "${KUBECTL[@]}" "$@"
}

helm_cmd() {
  "${HELM[@]}" "$@"
}

# Fail early, with the context named, when the cluster does not answer.
require_cluster() {
  local context="${KUBE_CONTEXT}"
  if [[ -z "${context}" ]] && ! context="$(kubectl config current-context 2>/dev/null)"; then
    context="(none)"
  fi
  if ! kube version --request-timeout=10s >/dev/null 2>&1; then
    die "the cluster of kubectl context '${context}' does not answer: create one with hack/kind-up.sh or pick one with --context"
  fi
  log "cluster: kubectl context '${context}'"
}

ensure_namespace() {
  local namespace="$1"
  if ! kube get namespace "${namespace}" >/dev/null 2>&1; then
    kube create namespace "${namespace}" >/dev/null
    log "created namespace ${namespace}"
  fi
}

# ---------------------------------------------------------------------------------------------
# Waits.

# retry ATTEMPTS DELAY_SECONDS COMMAND...: for steps that race a webhook or a CRD becoming ready.
retry() {
  local attempts="$1" delay="$2" attempt=1
  shift 2
  until "$@"; do
    if [[ "${attempt}" -ge "${attempts}" ]]; then
      return 1
    fi
    log "attempt ${attempt}/${attempts} failed; trying again in ${delay}s"
    attempt=$((attempt + 1))
    sleep "${delay}"
  done
}

# wait_until TIMEOUT_SECONDS WHAT COMMAND...: poll COMMAND every 3 seconds until it succeeds.
wait_until() {
  local timeout="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      warn "timed out after ${timeout}s waiting for ${what}"
      return 1
    fi
    sleep 3
  done
}

wait_for_deployments() {
  local namespace="$1" timeout="$2" name
  shift 2
  for name in "$@"; do
    log "waiting for deployment ${namespace}/${name}"
    kube -n "${namespace}" rollout status "deployment/${name}" --timeout="${timeout}" >/dev/null || return 1
  done
}

# Deployment names KServe (Standard mode) runs for an InferenceService: the stable predictor
# ("<isvc>-predictor", or "<isvc>-<name>-predictor" when spec.predictor.name is set) and one per
# spec.canary[] entry.
isvc_predictor_deployments() {
  local namespace="$1" isvc="$2" stable canaries name
  stable="$(kube -n "${namespace}" get inferenceservice "${isvc}" -o jsonpath='{.spec.predictor.name}')"
  canaries="$(kube -n "${namespace}" get inferenceservice "${isvc}" -o jsonpath='{.spec.canary[*].predictor.name}')"
  if [[ -n "${stable}" ]]; then
    echo "${isvc}-${stable}-predictor"
  else
    echo "${isvc}-predictor"
  fi
  for name in ${canaries}; do
    echo "${isvc}-${name}-predictor"
  done
}

# The predictor Deployments that exist for an InferenceService, sorted.
isvc_current_deployments() {
  local namespace="$1" isvc="$2"
  kube -n "${namespace}" get deployments \
    -l "serving.kserve.io/inferenceservice=${isvc},component=predictor" \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort
}

# True once KServe runs exactly the predictors the spec asks for (the controller has caught up
# with the last change, orphans included).
isvc_deployments_match_spec() {
  local namespace="$1" isvc="$2"
  [[ "$(isvc_predictor_deployments "${namespace}" "${isvc}" | sort)" == "$(isvc_current_deployments "${namespace}" "${isvc}")" ]]
}

# isvc_condition_true NAMESPACE NAME TYPE: KServe reports condition TYPE as True. Not `kubectl wait
# --for=condition`: it also wants status.observedGeneration to equal the object's generation, and in
# Standard mode KServe v0.20.0 writes its Deployment's generation there, so after a change to the
# InferenceService that wait can run until its timeout although the condition is True.
isvc_condition_true() {
  local status
  status="$(kube -n "$1" get inferenceservice "$2" -o "jsonpath={.status.conditions[?(@.type==\"$3\")].status}")"
  [[ "${status}" == "True" ]]
}

# wait_for_isvc NAMESPACE NAME TIMEOUT_SECONDS: Ready (and CanaryPredictorReady with canaries),
# every predictor Deployment rolled out. A Standard-mode InferenceService stays Ready during a
# rolling update, so the condition alone says nothing about the last change.
wait_for_isvc() {
  local namespace="$1" isvc="$2" timeout="$3" deployments
  log "waiting for KServe to reconcile inferenceservice ${namespace}/${isvc}"
  if ! wait_until "${timeout}" "the predictor Deployments of ${isvc}" \
    isvc_deployments_match_spec "${namespace}" "${isvc}"; then
    warn "expected: $(isvc_predictor_deployments "${namespace}" "${isvc}" | tr '\n' ' ')found: $(isvc_current_deployments "${namespace}" "${isvc}" | tr '\n' ' ')"
    show_isvc_diagnostics "${namespace}" "${isvc}"
    return 1
  fi
  mapfile -t deployments < <(isvc_predictor_deployments "${namespace}" "${isvc}")
  if ! wait_for_deployments "${namespace}" "${timeout}s" "${deployments[@]}"; then
    show_isvc_diagnostics "${namespace}" "${isvc}"
    return 1
  fi
  local conditions=(Ready) condition
  [[ ${#deployments[@]} -gt 1 ]] && conditions+=(CanaryPredictorReady)
  for condition in "${conditions[@]}"; do
    log "waiting for inferenceservice ${namespace}/${isvc} to be ${condition}"
    if ! wait_until "${timeout}" "${condition} of inferenceservice ${namespace}/${isvc}" \
      isvc_condition_true "${namespace}" "${isvc}" "${condition}"; then
      show_isvc_diagnostics "${namespace}" "${isvc}"
      return 1
    fi
  done
  log "inferenceservice ${namespace}/${isvc} is Ready ($(printf '%s ' "${deployments[@]}")rolled out)"
}

# What a person needs to see when an InferenceService does not come up. Never fails.
show_isvc_diagnostics() {
  local namespace="$1" isvc="$2" pod
  {
    echo "----- inferenceservice ${namespace}/${isvc}"
    kube -n "${namespace}" get inferenceservice "${isvc}" -o yaml 2>&1 | sed -n '/^status:/,$p'
    echo "----- pods in ${namespace}"
    kube -n "${namespace}" get pods -o wide 2>&1
    echo "----- recent events in ${namespace}"
    kube -n "${namespace}" get events --sort-by=.lastTimestamp 2>&1 | tail -n 25
    for pod in $(kube -n "${namespace}" get pods -l "serving.kserve.io/inferenceservice=${isvc}" -o name 2>/dev/null); do
      echo "----- logs of ${pod}"
      kube -n "${namespace}" logs "${pod}" --all-containers --tail=40 2>&1
    done
    echo "----- KServe controller"
    kube -n kserve logs deployment/kserve-controller-manager --tail=30 2>&1
  } >&2 || true
}

# ---------------------------------------------------------------------------------------------
# Port-forwards, stopped when the script exits.

PORT_FORWARD_PIDS=()

# start_port_forward NAMESPACE TARGET REMOTE_PORT: kubectl port-forward on a free local port;
# sets PORT_FORWARD_PORT.
start_port_forward() {
  local namespace="$1" target="$2" remote_port="$3" output pid port="" deadline
  output="$(mktemp)"
  "${KUBECTL[@]}" -n "${namespace}" port-forward "${target}" ":${remote_port}" >"${output}" 2>&1 &
  pid=$!
  PORT_FORWARD_PIDS+=("${pid}")
  deadline=$((SECONDS + 30))
  while [[ -z "${port}" ]]; do
    port="$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9][0-9]*\) .*/\1/p' "${output}" | head -n 1)"
    if [[ -n "${port}" ]]; then
      break
    fi
    if ! kill -0 "${pid}" 2>/dev/null || [[ "${SECONDS}" -ge "${deadline}" ]]; then
      cat "${output}" >&2
      rm -f "${output}"
      die "kubectl port-forward to ${namespace}/${target} did not start"
    fi
    sleep 0.2
  done
  rm -f "${output}"
  # shellcheck disable=SC2034 # the caller reads it
  PORT_FORWARD_PORT="${port}"
  log "port-forward: 127.0.0.1:${port} -> ${namespace}/${target}:${remote_port}"
}

stop_port_forwards() {
  local pid
  for pid in "${PORT_FORWARD_PIDS[@]}"; do
    kill "${pid}" 2>/dev/null || true
    wait "${pid}" 2>/dev/null || true
  done
  PORT_FORWARD_PIDS=()
}

# ---------------------------------------------------------------------------------------------
# Backups (hack/backup.sh, hack/restore.sh).

# The ConfigMaps servekit-canary keeps each InferenceService's history in (docs/canary.md).
# shellcheck disable=SC2034 # used by the scripts that source this file
HISTORY_SELECTOR="app.kubernetes.io/managed-by=servekit-canary,servekit.dev/inferenceservice"

# check_dns_label FLAG VALUE: a usage error unless VALUE can name a namespace.
check_dns_label() {
  if [[ ! "$2" =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]]; then
    usage_error "$1 '$2' is not a namespace name (lower-case letters, digits and '-', at most 63)"
  fi
}

# check_model_store VALUE: a usage error unless VALUE is URI_PREFIX=DIR with DIR a folder.
check_model_store() {
  [[ "$1" =~ ^[a-z0-9+.-]+://[^=]*=.+$ ]] ||
    usage_error "--model-store '$1' is not URI_PREFIX=DIR (e.g. s3://models=/mnt/models)"
  [[ -d "${1#*=}" ]] || usage_error "--model-store '$1': ${1#*=} is not a directory"
}

# is_archive PATH: true for a .tar.gz or .tgz name (anything else is a folder).
is_archive() {
  [[ "$1" == *.tar.gz || "$1" == *.tgz ]]
}

# start_workdir: a private scratch folder in WORKDIR, removed when the script exits.
start_workdir() {
  WORKDIR="$(mktemp -d)"
  trap 'rm -rf "${WORKDIR}"' EXIT
}

# find_servekit_python: SERVEKIT_PY, a Python that has the servekit package: $SERVEKIT_PYTHON,
# else the repository's .venv, else python3.
find_servekit_python() {
  local candidates=("${SERVEKIT_ROOT}/.venv/bin/python" python3) candidate
  if [[ -n "${SERVEKIT_PYTHON:-}" ]]; then
    candidates=("${SERVEKIT_PYTHON}")
  fi
  for candidate in "${candidates[@]}"; do
    if "${candidate}" -c 'import predictor.backup' >/dev/null 2>&1; then
      SERVEKIT_PY="${candidate}"
      return 0
    fi
  done
  die "no Python with the servekit package (tried: ${candidates[*]}): run 'make .venv/.dev-installed' or 'pip install servekit[backup]', or set SERVEKIT_PYTHON"
}

# backup_py COMMAND ARGS...: one step of a backup or restore in Python (predictor/backup/cli.py).
backup_py() {
  "${SERVEKIT_PY}" -m predictor.backup --prog "${SCRIPT_NAME}" "$@"
}

# ---------------------------------------------------------------------------------------------
# Run on its own, this file only explains itself.

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
  case "${1:-}" in
    -h | --help) usage; exit 0 ;;
    "") usage_error "this file is a library: source it from a hack/ script" ;;
    *) usage_error "unknown option: $1" ;;
  esac
fi
