#!/usr/bin/env bash
# The Kubernetes half of the control plane, for hack/controlplane.sh: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler, and kwok with its simulated nodes.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/kubernetes.sh"   (not run on its own)
#
# Every process listens on 127.0.0.1 only, on ports the kernel hands out at `up` (ports.env).
# The controller manager and the scheduler serve no HTTPS (--secure-port=0): nothing scrapes them.
set -euo pipefail

# The simulated nodes and the pods on them; kwok's own default annotation.
readonly KWOK_NODE_ANNOTATION="kwok.x-k8s.io/node=fake"
readonly POD_CIDR="10.244.0.0/16"

start_etcd() {
  start_process etcd "$(binary_path kube etcd)" \
    --name=servekit --data-dir="${STATE_DIR}/etcd" \
    --listen-client-urls="http://127.0.0.1:${ETCD_PORT}" --advertise-client-urls="http://127.0.0.1:${ETCD_PORT}" \
    --listen-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" --initial-advertise-peer-urls="http://127.0.0.1:${ETCD_PEER_PORT}" \
    --initial-cluster="servekit=http://127.0.0.1:${ETCD_PEER_PORT}" \
    --listen-metrics-urls="" --unsafe-no-fsync=true --quota-backend-bytes=2147483648 --log-level=warn
  wait_for etcd 60 "etcd on 127.0.0.1:${ETCD_PORT}" etcd_healthy
}

etcd_healthy() {
  [[ "$(curl -fsS "http://127.0.0.1:${ETCD_PORT}/health")" == *'"health":"true"'* ]]
}

start_apiserver() {
  local pki="${STATE_DIR}/pki" kubelet_client=()
  # The real node's kubelet serves logs, exec and port-forward: the API server calls it with a
  # client certificate and checks the kubelet's serving certificate against the cluster CA.
  if [[ "${NODE_ENABLED}" == true ]]; then
    kubelet_client=(--kubelet-client-certificate="${pki}/apiserver-kubelet-client.crt"
      --kubelet-client-key="${pki}/apiserver-kubelet-client.key"
      --kubelet-certificate-authority="${pki}/ca.crt" --kubelet-preferred-address-types=InternalIP)
  fi
  # PodSecurity is on by default; named so that a change of defaults cannot drop it.
  # --endpoint-reconciler-type=none: the `kubernetes` Service would otherwise point at 127.0.0.1,
  # which Endpoints validation refuses; nothing inside this cluster calls the API server by it.
  start_process kube-apiserver "$(binary_path kube kube-apiserver)" \
    --etcd-servers="http://127.0.0.1:${ETCD_PORT}" \
    --bind-address=127.0.0.1 --advertise-address=127.0.0.1 --secure-port="${API_PORT}" \
    --cert-dir="${STATE_DIR}/apiserver" \
    --tls-cert-file="${pki}/apiserver.crt" --tls-private-key-file="${pki}/apiserver.key" \
    --client-ca-file="${pki}/ca.crt" \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="${pki}/service-account.pub" \
    --service-account-signing-key-file="${pki}/service-account.key" \
    --service-cluster-ip-range="${SERVICE_CLUSTER_IP_RANGE}" \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=PodSecurity,NamespaceLifecycle,LimitRanger,ServiceAccount,DefaultStorageClass,ResourceQuota,NodeRestriction,MutatingAdmissionWebhook,ValidatingAdmissionWebhook \
    --endpoint-reconciler-type=none --profiling=false \
    "${kubelet_client[@]}"
  wait_for kube-apiserver 120 "kube-apiserver on https://127.0.0.1:${API_PORT}" \
    kube get --raw /readyz
}

start_controller_manager() {
  local pki="${STATE_DIR}/pki"
  start_process kube-controller-manager "$(binary_path kube kube-controller-manager)" \
    --kubeconfig="${KUBECONFIG_PATH}" --secure-port=0 --leader-elect=false \
    --cluster-name=servekit --root-ca-file="${pki}/ca.crt" \
    --service-account-private-key-file="${pki}/service-account.key" \
    --use-service-account-credentials=false --kube-api-qps=100 --kube-api-burst=200 \
    --node-monitor-grace-period=2m
}

start_scheduler() {
  start_process kube-scheduler "$(binary_path kube kube-scheduler)" \
    --kubeconfig="${KUBECONFIG_PATH}" --secure-port=0 --leader-elect=false \
    --kube-api-qps=100 --kube-api-burst=200
}

# kwok plays the kubelets: it keeps the nodes' leases and status fresh and moves every pod bound
# to them through its life (Running, Ready, deleted), without running containers. Node leases
# (renewed every 10 s) and a generous grace period in the controller manager keep a busy machine
# from having the node lifecycle controller declare the nodes lost and mark every pod NotReady.
start_kwok() {
  start_process kwok "$(binary_path kwok kwok)" \
    --kubeconfig="${KUBECONFIG_PATH}" --manage-all-nodes=false \
    --manage-nodes-with-annotation-selector="${KWOK_NODE_ANNOTATION}" \
    --cidr="${POD_CIDR}" --node-ip=10.240.0.1 --server-address="127.0.0.1:${KWOK_PORT}" \
    --node-lease-duration-seconds=40
}

create_nodes() {
  kube apply -f "${CONTROLPLANE_MODULES}/manifests/nodes.yaml" >/dev/null
  wait_for kwok 120 "the simulated nodes to be Ready" \
    kube wait node --all --for=condition=Ready --timeout=2s
}

# The controller manager's service-account controller makes `default` in every namespace; the
# ServiceAccount admission plugin refuses pods until it exists.
wait_for_controller_manager() {
  wait_for kube-controller-manager 120 "kube-controller-manager to create the default ServiceAccount" \
    kube -n default get serviceaccount default
}

start_kubernetes() {
  start_etcd
  start_apiserver
  start_controller_manager
  start_scheduler
  start_kwok
  wait_for_controller_manager
  create_nodes
}
