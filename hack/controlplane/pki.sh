#!/usr/bin/env bash
# The control plane's certificates and keys, made with openssl at `up`, for hack/controlplane.sh.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/pki.sh"   (not run on its own)
#
# One CA signs: the API server's serving certificate, the admin client certificate
# (O=system:masters) every control-plane component and the kubeconfig use, the serving
# certificate of KServe's webhook on 127.0.0.1 (what cert-manager issues in a real install), and
# the real node's identities (make_node_pki). The service-account
# token signing key pair is separate. ECDSA P-256 throughout: fast to make, accepted everywhere.
set -euo pipefail

readonly PKI_DAYS=30
# shellcheck disable=SC2034 # used by kubernetes.sh
readonly SERVICE_CLUSTER_IP_RANGE="10.96.0.0/16"
# The first address of the range: the `kubernetes` Service, which the API server's certificate names.
readonly KUBERNETES_SERVICE_IP="10.96.0.1"

new_key() {
  openssl ecparam -name prime256v1 -genkey -noout -out "$1" 2>/dev/null
  chmod 600 "$1"
}

# sign_cert DIR NAME SUBJECT EXTENSIONS: DIR/NAME.{key,crt} signed by DIR/ca.
sign_cert() {
  local dir="$1" name="$2" subject="$3" extensions="$4"
  new_key "${dir}/${name}.key"
  openssl req -new -key "${dir}/${name}.key" -subj "${subject}" -out "${dir}/${name}.csr" 2>/dev/null
  openssl x509 -req -in "${dir}/${name}.csr" -CA "${dir}/ca.crt" -CAkey "${dir}/ca.key" -CAcreateserial \
    -days "${PKI_DAYS}" -sha256 -extfile <(printf '%s\n' "${extensions}") -out "${dir}/${name}.crt" 2>/dev/null
  rm -f "${dir}/${name}.csr"
}

make_pki() {
  local dir="$1"
  command -v openssl >/dev/null 2>&1 || die "openssl is required to make the control plane's certificates: install it (Debian: apt-get install openssl)"
  mkdir -p "${dir}"
  new_key "${dir}/ca.key"
  openssl req -x509 -new -key "${dir}/ca.key" -subj "/CN=servekit-controlplane-ca" -days "${PKI_DAYS}" -sha256 \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -out "${dir}/ca.crt" 2>/dev/null
  sign_cert "${dir}" apiserver "/CN=kube-apiserver" "$(server_extensions \
    "IP:127.0.0.1,IP:${KUBERNETES_SERVICE_IP},DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local")"
  sign_cert "${dir}" admin "/O=system:masters/CN=servekit-admin" "$(client_extensions)"
  sign_cert "${dir}" kserve-webhook "/CN=kserve-webhook-server" "$(server_extensions "IP:127.0.0.1,DNS:localhost")"
  if [[ "${NODE_ENABLED}" == true ]]; then
    make_node_pki "${dir}"
  fi
  new_key "${dir}/service-account.key"
  openssl ec -in "${dir}/service-account.key" -pubout -out "${dir}/service-account.pub" 2>/dev/null
}

# The real node's identities: the kubelet (Node authorizer: system:node:NAME in system:nodes) and
# its serving certificate on the node's address, kube-proxy (bound to system:node-proxier by
# default), and the API server's client certificate for calling the kubelet.
make_node_pki() {
  local dir="$1"
  sign_cert "${dir}" node "/O=system:nodes/CN=system:node:${NODE_NAME}" "$(client_extensions)"
  sign_cert "${dir}" kubelet "/CN=${NODE_NAME}" "$(server_extensions "IP:${POD_GATEWAY_IP},DNS:${NODE_NAME}")"
  sign_cert "${dir}" kube-proxy "/CN=system:kube-proxy" "$(client_extensions)"
  sign_cert "${dir}" apiserver-kubelet-client "/CN=kube-apiserver-kubelet-client" "$(client_extensions)"
}

client_extensions() {
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" "extendedKeyUsage=clientAuth"
}

server_extensions() {
  printf '%s\n' "basicConstraints=critical,CA:FALSE" "keyUsage=critical,digitalSignature,keyEncipherment" \
    "extendedKeyUsage=serverAuth" "subjectAltName=$1"
}

# write_kubeconfig PATH SERVER_URL PKI_DIR [IDENTITY]: a kubeconfig for PKI_DIR/IDENTITY.{crt,key}
# (default: admin) with the certificates embedded, so it stays valid when copied elsewhere.
write_kubeconfig() {
  local path="$1" server="$2" pki="$3" identity="${4:-admin}"
  rm -f "${path}"
  kubectl config --kubeconfig="${path}" set-cluster servekit --server="${server}" \
    --certificate-authority="${pki}/ca.crt" --embed-certs=true >/dev/null
  kubectl config --kubeconfig="${path}" set-credentials "servekit-${identity}" \
    --client-certificate="${pki}/${identity}.crt" --client-key="${pki}/${identity}.key" --embed-certs=true >/dev/null
  kubectl config --kubeconfig="${path}" set-context servekit --cluster=servekit --user="servekit-${identity}" >/dev/null
  kubectl config --kubeconfig="${path}" use-context servekit >/dev/null
  chmod 600 "${path}"
}

# write_node_kubeconfig PATH IDENTITY: a kubeconfig for one of the node's components.
write_node_kubeconfig() {
  write_kubeconfig "$1" "https://127.0.0.1:${API_PORT}" "${STATE_DIR}/pki" "$2"
}
