#!/usr/bin/env bash
# What runs on top of Kubernetes, for hack/controlplane.sh: the CRDs every chart and overlay object
# needs, KServe's controller manager with its configuration and webhooks, and Envoy Gateway's
# controller with the Gateway KServe routes through.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/addons.sh"   (not run on its own)
#
# Every file comes from the Go module zip of the pinned release (`go mod download`), the same
# bytes as the release: no other download.
set -euo pipefail

readonly KSERVE_NAMESPACE="kserve"
readonly ENVOY_GATEWAY_NAMESPACE="envoy-gateway-system"
# Envoy Gateway reads its TLS files from this absolute path (a mounted Secret in its Deployment).
readonly ENVOY_GATEWAY_CERT_MOUNT="/certs"
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
  local gateway_api envoy_gateway keda prometheus_operator knative istio kserve
  gateway_api="$(module_dir sigs.k8s.io/gateway-api "${GATEWAY_API_VERSION}")"
  envoy_gateway="$(module_dir github.com/envoyproxy/gateway "${ENVOY_GATEWAY_VERSION}")"
  keda="$(module_dir github.com/kedacore/keda/v2 "${KEDA_VERSION}")"
  prometheus_operator="$(module_dir github.com/prometheus-operator/prometheus-operator "${PROMETHEUS_OPERATOR_VERSION}")"
  knative="$(module_dir knative.dev/serving "${KNATIVE_SERVING_VERSION}")"
  istio="$(module_dir istio.io/api "${ISTIO_API_VERSION}")"
  kserve="$(module_dir github.com/kserve/kserve "${KSERVE_VERSION}")"
  log "installing CRDs: Gateway API ${GATEWAY_API_VERSION} (standard), Envoy Gateway ${ENVOY_GATEWAY_VERSION}, KEDA ${KEDA_VERSION}, Prometheus Operator ${PROMETHEUS_OPERATOR_VERSION}, Knative Serving ${KNATIVE_SERVING_VERSION}, Istio security ${ISTIO_API_VERSION}, KServe ${KSERVE_VERSION}"
  apply_server_side -k "${gateway_api}/config/crd"
  apply_server_side -f "${envoy_gateway}/charts/gateway-helm/charts/crds/crds/generated"
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
  kube wait --for=condition=Established --timeout=60s crd --all >/dev/null
}

# ---------------------------------------------------------------------------------------------
# KServe

# The release's inferenceservice-config with the changes KServe's own quick install makes for
# Standard mode on Envoy Gateway: the default deployment mode, Gateway API routing, the ingress
# class; and no Istio VirtualService.
install_kserve_config() {
  local kserve="$1" ingress patch
  kube create namespace "${KSERVE_NAMESPACE}" >/dev/null
  apply_server_side -f "${kserve}/config/configmap/inferenceservice.yaml"
  ingress="$(kube -n "${KSERVE_NAMESPACE}" get configmap inferenceservice-config -o jsonpath='{.data.ingress}')"
  ingress="$(config_replace "${ingress}" '"enableGatewayApi": false' '"enableGatewayApi": true')"
  ingress="$(config_replace "${ingress}" '"ingressClassName" : "istio"' '"ingressClassName" : "envoy"')"
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
}

# A server-side dry run passes through KServe's mutating and validating webhooks.
kserve_webhook_answers() {
  kube create --dry-run=server -o name -f "${SERVEKIT_ROOT}/hack/kserve-webhook-probe.yaml"
}

# ---------------------------------------------------------------------------------------------
# Envoy Gateway

# Envoy Gateway's controller finds its xDS certificates only at /certs. It runs in a mount
# namespace of its own where the state folder's copy is bound there; /certs itself stays an empty
# folder on the host.
envoy_gateway_wrapper() {
  local certs="$1"
  if [[ ! -d "${ENVOY_GATEWAY_CERT_MOUNT}" ]]; then
    if [[ "$(id -u)" -eq 0 ]]; then
      mkdir -p "${ENVOY_GATEWAY_CERT_MOUNT}"
    else
      die "Envoy Gateway reads its certificates from ${ENVOY_GATEWAY_CERT_MOUNT}: create that empty folder once (sudo mkdir ${ENVOY_GATEWAY_CERT_MOUNT}); the control plane mounts its own certificates there for Envoy Gateway only"
    fi
  fi
  command -v unshare >/dev/null 2>&1 || die "unshare (util-linux) is required to give Envoy Gateway its own ${ENVOY_GATEWAY_CERT_MOUNT}"
  START_WRAPPER=(unshare --mount --propagation private)
  if [[ "$(id -u)" -ne 0 ]]; then
    START_WRAPPER=(unshare --user --map-root-user --mount --propagation private)
  fi
  # shellcheck disable=SC2016 # expanded by the inner shell
  START_WRAPPER+=(sh -c 'mount --bind "$0" "$1" && shift && exec "$@"' "${certs}" "${ENVOY_GATEWAY_CERT_MOUNT}")
}

# Checked before anything starts, so a second control plane fails at once.
require_envoy_gateway_ports() {
  local port
  for port in "${ENVOY_GATEWAY_FIXED_PORTS[@]}"; do
    if port_in_use "${port}"; then
      die "port ${port} is in use: Envoy Gateway's controller listens on ${ENVOY_GATEWAY_FIXED_PORTS[*]} (fixed in its code); stop what holds it (another control plane? make serve?)"
    fi
  done
}

# Envoy Gateway's own certgen makes the Secrets its Helm chart's Job makes; the controller's copy
# of them is written to the state folder.
make_envoy_gateway_certs() {
  local binary="$1" certs="$2" file
  env KUBECONFIG="${KUBECONFIG_PATH}" ENVOY_GATEWAY_NAMESPACE="${ENVOY_GATEWAY_NAMESPACE}" \
    "${binary}" certgen --disable-topology-injector >"${STATE_DIR}/logs/envoy-gateway-certgen.log" 2>&1 ||
    die "envoy-gateway certgen failed; its log: ${STATE_DIR}/logs/envoy-gateway-certgen.log"
  mkdir -p "${certs}"
  chmod 700 "${certs}"
  for file in ca.crt tls.crt tls.key; do
    # Created 0600 whatever the caller's umask: tls.key is the controller's private key.
    (umask 077 && kube -n "${ENVOY_GATEWAY_NAMESPACE}" get secret envoy-gateway -o "jsonpath={.data.${file//./\\.}}" |
      base64 -d >"${certs}/${file}")
  done
}

write_envoy_gateway_config() {
  cat >"$1" <<EOF
apiVersion: gateway.envoyproxy.io/v1alpha1
kind: EnvoyGateway
gateway:
  controllerName: gateway.envoyproxy.io/gatewayclass-controller
provider:
  type: Kubernetes
  kubernetes:
    leaderElection:
      disable: true
logging:
  level:
    default: info
admin:
  address:
    host: 127.0.0.1
    port: ${ENVOY_GATEWAY_ADMIN_PORT}
telemetry:
  metrics:
    prometheus:
      disable: true
EOF
}

start_envoy_gateway() {
  local binary dir="${STATE_DIR}/envoy-gateway"
  binary="$(binary_path envoy-gateway envoy-gateway)"
  kube create namespace "${ENVOY_GATEWAY_NAMESPACE}" >/dev/null
  make_envoy_gateway_certs "${binary}" "${dir}/certs"
  write_envoy_gateway_config "${dir}/config.yaml"
  envoy_gateway_wrapper "${dir}/certs"
  START_WRAPPER=(env "KUBECONFIG=${KUBECONFIG_PATH}" "ENVOY_GATEWAY_NAMESPACE=${ENVOY_GATEWAY_NAMESPACE}" "${START_WRAPPER[@]}")
  start_process envoy-gateway "${binary}" server --config-path="${dir}/config.yaml"
  START_WRAPPER=()
  apply_server_side -f "${CONTROLPLANE_MODULES}/manifests/gateway.yaml"
  wait_for envoy-gateway 180 "Envoy Gateway to program the Gateway ${KSERVE_NAMESPACE}/kserve-ingress-gateway" \
    kube -n "${KSERVE_NAMESPACE}" wait gateway/kserve-ingress-gateway --for=condition=Programmed --timeout=2s
}
