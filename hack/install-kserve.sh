#!/usr/bin/env bash
# Install KServe on a cluster: cert-manager first (KServe's webhooks take their certificates
# from it), then KServe's CRDs, controller and cluster serving runtimes from the release's install
# manifests, with Standard mode (plain Deployments, formerly RawDeployment) as the default
# deployment mode. Waits until the controller and its admission webhook answer.
# Idempotent: what is already installed at the pinned version is kept.
#
# Usage: hack/install-kserve.sh [--context CONTEXT] [--timeout SECONDS] [--reinstall | --uninstall]
#
#   --context CONTEXT  kubectl context to install into (default: the current context)
#   --timeout SECONDS  longest wait for each component to become ready (default: 300)
#   --reinstall        remove cert-manager and KServe first, then install them again
#   --uninstall        remove KServe (every InferenceService first) and cert-manager
#   -h, --help         show this help
#
# Standard mode needs no Knative or Istio. Needs kubectl. Downloads only the pinned release
# manifests below, with kubectl.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# KSERVE_VERSION and CERT_MANAGER_VERSION: pinned in hack/versions.env, shared with the control
# plane the cluster tests run on (hack/controlplane.sh), so both install the same KServe.
# shellcheck disable=SC1091 # plain NAME=value lines, nothing to follow
source "${SERVEKIT_ROOT}/hack/versions.env"

readonly KSERVE_RELEASE="https://github.com/kserve/kserve/releases/download/${KSERVE_VERSION}"
readonly KSERVE_CRDS_URL="${KSERVE_RELEASE}/kserve-crds.yaml"
readonly KSERVE_URL="${KSERVE_RELEASE}/kserve.yaml"
readonly KSERVE_CLUSTER_RESOURCES_URL="${KSERVE_RELEASE}/kserve-cluster-resources.yaml"
readonly CERT_MANAGER_URL="https://github.com/cert-manager/cert-manager/releases/download/${CERT_MANAGER_VERSION}/cert-manager.yaml"
readonly KSERVE_NAMESPACE="kserve"
readonly DEFAULT_DEPLOYMENT_MODE="Standard"

context="${KUBE_CONTEXT:-}"
timeout=300
action="install"

while [[ $# -gt 0 ]]; do
  case "$1" in
    --context) need_value "$@"; context="$2"; shift 2 ;;
    --timeout) need_value "$@"; timeout="$2"; shift 2 ;;
    --reinstall) action="reinstall"; shift ;;
    --uninstall) action="uninstall"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done
if [[ ! "${timeout}" =~ ^[1-9][0-9]*$ ]]; then
  usage_error "--timeout must be a whole number of seconds, got '${timeout}'"
fi

require_tools kubectl
use_kube_context "${context}"
require_cluster

# ---------------------------------------------------------------------------------------------
# cert-manager

cert_manager_version() {
  kube -n cert-manager get deployment cert-manager \
    -o jsonpath='{.metadata.labels.app\.kubernetes\.io/version}' 2>/dev/null
}

install_cert_manager() {
  local installed
  installed="$(cert_manager_version || true)"
  if [[ "${installed}" == "${CERT_MANAGER_VERSION}" ]]; then
    log "cert-manager ${installed} is installed"
  else
    if [[ -n "${installed}" ]]; then
      warn "cert-manager ${installed} is installed; applying ${CERT_MANAGER_VERSION} over it"
    fi
    log "installing cert-manager ${CERT_MANAGER_VERSION}"
    kube apply --server-side --force-conflicts -f "${CERT_MANAGER_URL}" >/dev/null
  fi
  wait_for_deployments cert-manager "${timeout}s" cert-manager cert-manager-cainjector cert-manager-webhook
}

uninstall_cert_manager() {
  if [[ -z "$(cert_manager_version || true)" ]]; then
    log "cert-manager is not installed"
    return 0
  fi
  log "removing cert-manager"
  kube delete -f "${CERT_MANAGER_URL}" --ignore-not-found --wait=true >/dev/null
}

# ---------------------------------------------------------------------------------------------
# KServe

kserve_controller_image() {
  kube -n "${KSERVE_NAMESPACE}" get deployment kserve-controller-manager \
    -o jsonpath='{.spec.template.spec.containers[?(@.name=="manager")].image}' 2>/dev/null
}

crds_established() {
  kube wait --for=condition=Established --timeout=60s \
    crd/inferenceservices.serving.kserve.io crd/clusterstoragecontainers.serving.kserve.io >/dev/null
}

apply_kserve() {
  kube apply --server-side --force-conflicts -f "${KSERVE_URL}" >/dev/null
}

# The release manifests leave the default mode at Knative ("Serverless"); servekit's kind set-up
# has no Knative, so InferenceServices without the deploymentMode annotation become Deployments.
set_default_deployment_mode() {
  local current
  current="$(kube -n "${KSERVE_NAMESPACE}" get configmap inferenceservice-config -o jsonpath='{.data.deploy}')"
  if [[ "${current}" == *"\"${DEFAULT_DEPLOYMENT_MODE}\""* ]]; then
    log "default deployment mode is already ${DEFAULT_DEPLOYMENT_MODE}"
    return 0
  fi
  log "setting the default deployment mode to ${DEFAULT_DEPLOYMENT_MODE}"
  kube -n "${KSERVE_NAMESPACE}" patch configmap inferenceservice-config --type merge \
    -p "{\"data\":{\"deploy\":\"{\\\"defaultDeploymentMode\\\": \\\"${DEFAULT_DEPLOYMENT_MODE}\\\"}\"}}" >/dev/null
  # The controller reads the mode at start-up.
  kube -n "${KSERVE_NAMESPACE}" rollout restart deployment/kserve-controller-manager >/dev/null
}

webhook_has_ca() {
  [[ -n "$(kube get validatingwebhookconfiguration inferenceservice.serving.kserve.io \
    -o jsonpath='{.webhooks[0].clientConfig.caBundle}' 2>/dev/null)" ]]
}

# A server-side dry run goes through KServe's defaulting and validating webhooks: it gets past
# them only once they serve with a certificate the API server trusts. Any answer from the webhook
# counts, a rejection of the probe included; only "failed calling webhook" means not yet.
webhook_answers() {
  local output
  if output="$(kube create --dry-run=server -o name -f "${SERVEKIT_ROOT}/hack/kserve-webhook-probe.yaml" 2>&1)"; then
    return 0
  fi
  [[ "${output}" != *"failed calling webhook"* ]]
}

install_kserve() {
  local image
  image="$(kserve_controller_image || true)"
  if [[ "${image}" == *":${KSERVE_VERSION}" ]]; then
    log "KServe ${KSERVE_VERSION} is installed"
  else
    if [[ -n "${image}" ]]; then
      warn "KServe controller ${image} is installed; applying ${KSERVE_VERSION} over it"
    fi
    log "installing KServe ${KSERVE_VERSION} CRDs"
    kube apply --server-side --force-conflicts -f "${KSERVE_CRDS_URL}" >/dev/null
    retry 10 3 crds_established
    ensure_namespace "${KSERVE_NAMESPACE}"
    # Its Issuer and Certificates go through cert-manager's webhook, which may still be starting.
    log "installing KServe ${KSERVE_VERSION} controller"
    retry 5 10 apply_kserve || die "applying ${KSERVE_URL} failed"
  fi
  set_default_deployment_mode
  wait_for_deployments "${KSERVE_NAMESPACE}" "${timeout}s" kserve-controller-manager
  log "waiting for KServe's admission webhook"
  wait_until "${timeout}" "cert-manager to inject the CA into KServe's webhooks" webhook_has_ca ||
    die "KServe's webhook configuration has no CA bundle: is cert-manager's cainjector running?"
  wait_until "${timeout}" "KServe's webhook to answer" webhook_answers ||
    die "KServe's webhook does not answer: kubectl -n ${KSERVE_NAMESPACE} logs deployment/kserve-controller-manager"
  if [[ -z "$(kube get clusterservingruntimes -o name 2>/dev/null)" ]]; then
    log "installing KServe ${KSERVE_VERSION} cluster serving runtimes"
    retry 5 10 kube apply --server-side --force-conflicts -f "${KSERVE_CLUSTER_RESOURCES_URL}" >/dev/null ||
      die "applying ${KSERVE_CLUSTER_RESOURCES_URL} failed"
  fi
  # KServe ships its storage initializer without the security context the "restricted" Pod
  # Security Standard requires: predictors with a storageUri get no pods in such namespaces.
  log "giving KServe's storage initializer a \"restricted\" security context"
  kube patch clusterstoragecontainer default --type merge \
    --patch-file "${SERVEKIT_ROOT}/hack/kserve-restricted-storage-initializer.yaml" >/dev/null
  log "KServe ${KSERVE_VERSION} is ready (default deployment mode ${DEFAULT_DEPLOYMENT_MODE})"
}

uninstall_kserve() {
  if [[ -z "$(kserve_controller_image || true)" ]] &&
    ! kube get crd inferenceservices.serving.kserve.io >/dev/null 2>&1; then
    log "KServe is not installed"
    return 0
  fi
  # While the controller still runs, so their finalizers are handled and nothing is left stuck.
  if kube get crd inferenceservices.serving.kserve.io >/dev/null 2>&1; then
    log "deleting every InferenceService"
    kube delete inferenceservices --all --all-namespaces --wait=true --timeout="${timeout}s" >/dev/null || true
  fi
  log "removing KServe ${KSERVE_VERSION}"
  kube delete -f "${KSERVE_CLUSTER_RESOURCES_URL}" --ignore-not-found >/dev/null || true
  kube delete -f "${KSERVE_URL}" --ignore-not-found --wait=true >/dev/null
  kube delete -f "${KSERVE_CRDS_URL}" --ignore-not-found >/dev/null
  kube delete namespace "${KSERVE_NAMESPACE}" --ignore-not-found --wait=true >/dev/null
}

case "${action}" in
  uninstall)
    uninstall_kserve
    uninstall_cert_manager
    ;;
  reinstall)
    uninstall_kserve
    uninstall_cert_manager
    install_cert_manager
    install_kserve
    ;;
  install)
    install_cert_manager
    install_kserve
    ;;
esac
