#!/usr/bin/env bash
# Cluster access: kubectl and helm bound to one context, a cluster that must answer, namespaces,
# and port-forwards stopped when the script exits.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# kubectl and helm, with --context / --kube-context once use_kube_context has been called.
KUBE_CONTEXT=""
KUBECTL=(kubectl)
HELM=(helm)

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
