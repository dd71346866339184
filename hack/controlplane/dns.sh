#!/usr/bin/env bash
# Cluster DNS, for hack/controlplane.sh: CoreDNS (hack/controlplane/coredns, CoreDNS's Go module
# with the plugins used here) answering cluster.local from the API server with its kubernetes
# plugin, on 127.0.0.1:DNS_PORT and, when POD_GATEWAY_IP is set and is an address of this host
# (the node's bridge), on POD_GATEWAY_IP:53 for pods. It forwards nothing: there is no network
# out, so a name outside cluster.local is REFUSED (CoreDNS serves no zone for it).
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/dns.sh"   (not run on its own)
set -euo pipefail

readonly CLUSTER_DOMAIN="cluster.local"

# write_corefile FILE POD_IP: one server block per address (their ports differ).
write_corefile() {
  local file="$1" pod_ip="$2" address port
  : >"${file}"
  for address in "127.0.0.1:${DNS_PORT}" ${pod_ip:+"${pod_ip}:53"}; do
    port="${address##*:}"
    cat >>"${file}" <<EOF
${CLUSTER_DOMAIN}:${port} in-addr.arpa:${port} ip6.arpa:${port} {
    bind ${address%:*}
    errors
    kubernetes ${CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {
        kubeconfig ${KUBECONFIG_PATH} servekit
        pods insecure
    }
EOF
    # One readiness endpoint for the process (the ready plugin may appear once).
    if [[ "${address}" == 127.0.0.1:* ]]; then
      echo "    ready 127.0.0.1:${DNS_READY_PORT}" >>"${file}"
    fi
    echo "}" >>"${file}"
  done
}

start_dns() {
  local dir="${STATE_DIR}/coredns" pod_ip
  mkdir -p "${dir}"
  pod_ip="$(pod_gateway_ip)"
  if [[ -z "${pod_ip}" && -n "${POD_GATEWAY_IP:-}" ]]; then
    warn "POD_GATEWAY_IP=${POD_GATEWAY_IP} is not an address of this host: CoreDNS listens on 127.0.0.1 only"
  fi
  write_corefile "${dir}/Corefile" "${pod_ip}"
  start_process coredns "$(binary_path coredns coredns)" -conf "${dir}/Corefile" -quiet
  # ready answers 200 once the kubernetes plugin has synced with the API server.
  wait_for coredns 60 "CoreDNS to sync with the API server" curl -fsS "http://127.0.0.1:${DNS_READY_PORT}/ready"
}

dns_server() {
  echo "127.0.0.1:${DNS_PORT}"
}
