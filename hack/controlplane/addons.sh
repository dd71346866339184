#!/usr/bin/env bash
# What runs on top of Kubernetes, for hack/controlplane.sh: the CRDs every chart and overlay object
# needs, and KServe's controller manager with its configuration and webhooks (the Gateway KServe
# routes through is served by gateway.sh).
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/addons.sh"   (not run on its own)
#
# Every file comes from the Go module zip of the pinned release (`go mod download`), the same
# bytes as the release: no other download.
set -euo pipefail

readonly KSERVE_NAMESPACE="kserve"
readonly STORAGE_INITIALIZER_IMAGE="servekit/storage-initializer:dev"
readonly PROMETHEUS_OPERATOR_CRDS=(servicemonitors.yaml podmonitors.yaml prometheusrules.yaml)

# module_dir MODULE VERSION: the read-only folder of that module's zip in Go's module cache.
module_dir() {
  local json dir
  json="$(cd "${STATE_DIR}" && GOFLAGS=-mod=mod go mod download -json "$1@$2" 2>&1)" ||
    die "go mod download $1@$2 failed: ${json}"
  dir="$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"${json}")"
  [[ -d "${dir}" ]] || die "go mod download $1@$2 gave no folder: ${json}"
  echo "${dir}"
}

# security_istio_crds FILE: the security.istio.io CustomResourceDefinitions of Istio's generated
# CRD file (documents separated by `---` lines, each CRD naming its group at `spec.group`).
security_istio_crds() {
  awk '
    function flush() { if (doc ~ /\n  group: security\.istio\.io\n/) { printf "---\n%s", doc; found++ } doc = "" }
    /^---$/ { flush(); next }
    { doc = doc $0 "\n" }
    END { flush(); if (!found) { print "no security.istio.io CRDs in " FILENAME > "/dev/stderr"; exit 1 } }
  ' "$1"
}

apply_server_side() {
  kube apply --server-side --force-conflicts --field-manager=servekit-controlplane "$@" >/dev/null
}

install_crds() {
  local gateway_api keda prometheus_operator knative istio kserve
  gateway_api="$(module_dir sigs.k8s.io/gateway-api "${GATEWAY_API_VERSION}")"
  keda="$(module_dir github.com/kedacore/keda/v2 "${KEDA_VERSION}")"
  prometheus_operator="$(module_dir github.com/prometheus-operator/prometheus-operator "${PROMETHEUS_OPERATOR_VERSION}")"
  knative="$(module_dir knative.dev/serving "${KNATIVE_SERVING_VERSION}")"
  istio="$(module_dir istio.io/api "${ISTIO_API_VERSION}")"
  kserve="$(module_dir github.com/kserve/kserve "${KSERVE_VERSION}")"
  log "installing CRDs: Gateway API ${GATEWAY_API_VERSION} (standard), KEDA ${KEDA_VERSION}, Prometheus Operator ${PROMETHEUS_OPERATOR_VERSION}, Knative Serving ${KNATIVE_SERVING_VERSION}, Istio security ${ISTIO_API_VERSION}, KServe ${KSERVE_VERSION}"
  apply_server_side -k "${gateway_api}/config/crd"
  apply_server_side -f "${keda}/config/crd/bases"
  # The monitoring kinds a chart can render; the Prometheus and Alertmanager CRDs (megabytes of
  # schema, slow to apply) are left out: no operator runs to use them.
  local monitoring_crds=("${PROMETHEUS_OPERATOR_CRDS[@]/#/--filename=${prometheus_operator}/example/prometheus-operator-crd/monitoring.coreos.com_}")
  apply_server_side "${monitoring_crds[@]}"
  local knative_crds=("${knative}"/config/core/300-resources/*.yaml)
  apply_server_side "${knative_crds[@]/#/--filename=}"
  # Only the security kinds the chart and the istio-auth overlay render: no Istio runs here, and a
  # VirtualService CRD would make KServe expect Istio's routing.
  security_istio_crds "${istio}/kubernetes/customresourcedefinitions.gen.yaml" | apply_server_side -f -
  apply_server_side -k "${kserve}/config/crd"
  # Polled: `kubectl wait` fails at once, rather than waiting, on a CRD with no conditions yet.
  wait_for kube-apiserver 120 "the CRDs to be Established" \
    kube wait --for=condition=Established --timeout=60s crd --all
}

# ---------------------------------------------------------------------------------------------
# KServe

# The release's inferenceservice-config with the changes KServe's own quick install makes for
# Standard mode on a Gateway API implementation: the default deployment mode, Gateway API routing,
# the ingress class (the harness's GatewayClass, servekit); and no Istio VirtualService.
install_kserve_config() {
  local kserve="$1" ingress patch
  kube create namespace "${KSERVE_NAMESPACE}" >/dev/null
  apply_server_side -f "${kserve}/config/configmap/inferenceservice.yaml"
  ingress="$(kube -n "${KSERVE_NAMESPACE}" get configmap inferenceservice-config -o jsonpath='{.data.ingress}')"
  ingress="$(config_replace "${ingress}" '"enableGatewayApi": false' '"enableGatewayApi": true')"
  ingress="$(config_replace "${ingress}" '"ingressClassName" : "istio"' '"ingressClassName" : "servekit"')"
  # No Istio here: KServe itself asks for this when its VirtualService CRD is missing, and
  # otherwise logs an error and records a Warning event on every reconcile.
  ingress="$(config_replace "${ingress}" '"disableIstioVirtualHost": false' '"disableIstioVirtualHost": true')"
  patch="$(python3 -c 'import json, sys; print(json.dumps({"data": {"ingress": sys.argv[1], "deploy": sys.argv[2]}}))' \
    "${ingress}" '{"defaultDeploymentMode": "Standard"}')"
  kube -n "${KSERVE_NAMESPACE}" patch configmap inferenceservice-config --type merge -p "${patch}" >/dev/null
}

# config_replace TEXT FROM TO: TEXT with FROM replaced; dies when the release's text has no FROM.
config_replace() {
  [[ "$1" == *"$2"* ]] ||
    die "KServe ${KSERVE_VERSION}'s inferenceservice-config has no '$2' to change; update hack/controlplane/addons.sh"
  printf '%s' "${1/"$2"/"$3"}"
}

# The release's webhook configurations, each clientConfig.service turned into a URL on 127.0.0.1
# (where the manager runs) with the CA that signed its serving certificate.
kserve_webhook_configurations() {
  local kserve="$1" ca_bundle
  ca_bundle="$(base64 -w0 <"${STATE_DIR}/pki/ca.crt")"
  awk -v base="https://127.0.0.1:${KSERVE_WEBHOOK_PORT}" -v ca="${ca_bundle}" '
    function indent_of(line) { return match(line, /[^ ]/) - 1 }
    function flush() {
      pad = sprintf("%*s", service_indent, "")
      print pad "url: " base path
      print pad "caBundle: " ca
      in_service = 0
    }
    in_service && indent_of($0) > service_indent { if ($1 == "path:") path = $2; next }
    in_service { flush() }
    /^ *service:$/ && previous ~ /clientConfig:$/ { in_service = 1; service_indent = indent_of($0); path = ""; next }
    { previous = $0; print }
    END { if (in_service) flush() }' "${kserve}/config/webhook/manifests.yaml"
}

install_kserve_webhooks() {
  local kserve="$1" rendered="${STATE_DIR}/kserve/webhooks.yaml" hooks urls
  kserve_webhook_configurations "${kserve}" >"${rendered}"
  hooks="$(grep -c 'clientConfig:' "${rendered}")"
  urls="$(grep -c "url: https://127.0.0.1:${KSERVE_WEBHOOK_PORT}/" "${rendered}")"
  # shellcheck disable=SC2016 # a literal $( is what kustomize would have replaced
  if [[ "${hooks}" -eq 0 || "${hooks}" -ne "${urls}" ]] || grep -qF '$(' "${rendered}"; then
    die "rewriting KServe's webhook configurations to 127.0.0.1 left ${urls} of ${hooks} webhooks pointing at the manager: see ${rendered}"
  fi
  apply_server_side -f "${rendered}"
}

start_kserve() {
  local kserve certs="${STATE_DIR}/kserve/tmp/k8s-webhook-server/serving-certs"
  kserve="$(module_dir github.com/kserve/kserve "${KSERVE_VERSION}")"
  install_kserve_config "${kserve}"
  # controller-runtime's webhook server reads its certificate from $TMPDIR/k8s-webhook-server/serving-certs.
  mkdir -p "${certs}"
  cp "${STATE_DIR}/pki/kserve-webhook.crt" "${certs}/tls.crt"
  cp "${STATE_DIR}/pki/kserve-webhook.key" "${certs}/tls.key"
  START_WRAPPER=(env "KUBECONFIG=${KUBECONFIG_PATH}" "POD_NAMESPACE=${KSERVE_NAMESPACE}" "TMPDIR=${STATE_DIR}/kserve/tmp")
  start_process kserve-controller-manager "$(binary_path kserve manager)" \
    --metrics-addr="127.0.0.1:${KSERVE_METRICS_PORT}" --health-probe-addr="127.0.0.1:${KSERVE_PROBE_PORT}" \
    --webhook-port="${KSERVE_WEBHOOK_PORT}" --leader-elect=false
  # shellcheck disable=SC2034 # read by start_process (processes.sh)
  START_WRAPPER=()
  install_kserve_webhooks "${kserve}"
  wait_for kserve-controller-manager 120 "KServe's controller manager to be ready" \
    curl -fsS "http://127.0.0.1:${KSERVE_PROBE_PORT}/readyz"
  wait_for kserve-controller-manager 60 "KServe's admission webhook to answer the API server" kserve_webhook_answers
  log "installing KServe ${KSERVE_VERSION}'s cluster serving runtimes and storage containers (storage initializer made \"restricted\")"
  apply_server_side -k "${kserve}/config/runtimes"
  apply_server_side -k "${kserve}/config/storagecontainers"
  kube patch clusterstoragecontainer default --type merge \
    --patch-file "${SERVEKIT_ROOT}/hack/kserve-restricted-storage-initializer.yaml" >/dev/null
  # KServe's storage initializer built here from KServe's Python package (hack/image/build.sh
  # storage-initializer), which the real node runs: nothing is pulled.
  kube patch clusterstoragecontainer default --type merge \
    -p "{\"spec\":{\"container\":{\"image\":\"${STORAGE_INITIALIZER_IMAGE}\",\"imagePullPolicy\":\"IfNotPresent\"}}}" >/dev/null
}

# A server-side dry run passes through KServe's mutating and validating webhooks.
kserve_webhook_answers() {
  kube create --dry-run=server -o name -f "${SERVEKIT_ROOT}/hack/kserve-webhook-probe.yaml"
}
