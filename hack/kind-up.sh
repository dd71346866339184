#!/usr/bin/env bash
# Create a local kind cluster for servekit: one node on the pinned Kubernetes node image.
# Idempotent: an existing cluster of that name is kept as it is.
#
# Usage: hack/kind-up.sh [--name NAME] [--reinstall | --uninstall]
#
#   --name NAME   cluster name (default: $KIND_CLUSTER_NAME, else servekit); the kubectl
#                 context is kind-NAME
#   --reinstall   delete the cluster first, then create it again
#   --uninstall   delete the cluster (nothing to do when it does not exist)
#   -h, --help    show this help
#
# Needs docker (a running engine), kind and kubectl.
set -euo pipefail

# Pinned versions. The node image is the one kind v0.30.0 was released with, by digest: kind
# only supports node images built for its own release.
readonly KIND_VERSION="v0.30.0"
readonly KIND_NODE_IMAGE="kindest/node:v1.34.0@sha256:7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a"
readonly READY_TIMEOUT="180s"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

name="${KIND_CLUSTER_NAME:-servekit}"
action="install"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --name) need_value "$@"; name="$2"; shift 2 ;;
    --reinstall) action="reinstall"; shift ;;
    --uninstall) action="uninstall"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done
if [[ ! "${name}" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]]; then
  usage_error "--name '${name}' must be lower-case letters, digits and '-'"
fi

require_docker_engine
require_tools kind kubectl
warn_if_version_differs kind "$(kind version 2>/dev/null | awk '{print $2}')" "${KIND_VERSION}"

cluster_exists() {
  kind get clusters 2>/dev/null | grep -qx "${name}"
}

uninstall() {
  if cluster_exists; then
    log "deleting kind cluster '${name}'"
    kind delete cluster --name "${name}"
  else
    log "kind cluster '${name}' does not exist; nothing to delete"
  fi
}

install() {
  if cluster_exists; then
    log "kind cluster '${name}' already exists; keeping it (--reinstall recreates it)"
  else
    log "creating kind cluster '${name}' (${KIND_NODE_IMAGE%@*})"
    # One control-plane node that also runs the workloads: enough for KServe and two predictors.
    kind create cluster --name "${name}" --image "${KIND_NODE_IMAGE}" --wait "${READY_TIMEOUT}" --config - <<'EOF'
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
EOF
  fi
  use_kube_context "kind-${name}"
  log "waiting for the nodes to be Ready"
  kube wait --for=condition=Ready nodes --all --timeout="${READY_TIMEOUT}" >/dev/null
  log "cluster '${name}' is ready: kubectl --context kind-${name} ..."
}

case "${action}" in
  uninstall) uninstall ;;
  reinstall) uninstall; install ;;
  install) install ;;
esac
