#!/usr/bin/env bash
# The gateway data plane, for hack/controlplane.sh: servekit-gateway (hack/controlplane/gateway,
# a small Gateway API implementation of ours) serving KServe's Gateway kserve/kserve-ingress-gateway
# on 127.0.0.1:GATEWAY_PORT, which stands for the Gateway's listener on port 80.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/gateway.sh"   (not run on its own)
set -euo pipefail

# The GatewayClass's controllerName (hack/controlplane/manifests/gateway.yaml says the same).
readonly GATEWAY_CONTROLLER_NAME="servekit.dev/gateway-controller"
readonly GATEWAY_LISTENER_PORT=80

start_gateway() {
  start_process gateway "$(binary_path gateway servekit-gateway)" \
    --kubeconfig="${KUBECONFIG_PATH}" --gateway="${KSERVE_NAMESPACE}/kserve-ingress-gateway" \
    --controller-name="${GATEWAY_CONTROLLER_NAME}" --listener-port="${GATEWAY_LISTENER_PORT}" \
    --listen="127.0.0.1:${GATEWAY_PORT}" --address=127.0.0.1
  apply_server_side -f "${CONTROLPLANE_MODULES}/manifests/gateway.yaml"
  wait_for gateway 60 "servekit-gateway to program the Gateway ${KSERVE_NAMESPACE}/kserve-ingress-gateway" \
    kube -n "${KSERVE_NAMESPACE}" wait gateway/kserve-ingress-gateway --for=condition=Programmed --timeout=2s
  # Answers (404: no route yet) once it listens.
  wait_for gateway 30 "servekit-gateway to answer on 127.0.0.1:${GATEWAY_PORT}" \
    curl -sS -o /dev/null "http://127.0.0.1:${GATEWAY_PORT}/"
}

gateway_url() {
  echo "http://127.0.0.1:${GATEWAY_PORT}"
}
