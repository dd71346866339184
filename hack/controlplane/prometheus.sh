#!/usr/bin/env bash
# Prometheus for hack/controlplane.sh: Debian's Prometheus on 127.0.0.1 scraping the real node's
# pods as the cluster's ServiceMonitors and PodMonitors say. Debian builds Prometheus without its
# Kubernetes service discovery and no Prometheus Operator runs, so monitors_to_scrape_config.py
# plays both (see its docstring). Pods are scraped at their addresses on the node's bridge.
#
# Usage: source "$(dirname "${BASH_SOURCE[0]}")/controlplane/prometheus.sh"   (not run on its own)
set -euo pipefail

prometheus_dir() {
  echo "${STATE_DIR}/prometheus"
}

start_prometheus() {
  local dir python
  dir="$(prometheus_dir)"
  mkdir -p "${dir}/data"
  command -v prometheus >/dev/null 2>&1 || die "prometheus is required (Debian: apt-get install prometheus; hack/install-test-tools.sh)"
  # The interpreter itself (not a launcher such as pyenv's shim), so its pid file names what runs.
  python="$(readlink -f "$(python3 -c 'import sys; print(sys.executable)')")"
  # The first configuration is written before Prometheus starts; the loop then follows changes.
  "${python}" "${CONTROLPLANE_MODULES}/monitors_to_scrape_config.py" --once \
    --kubeconfig "${KUBECONFIG_PATH}" --scrape-network "${NODE_POD_CIDR}" \
    --out "${dir}/prometheus.yml" 2>>"${STATE_DIR}/logs/prometheus-config.log" ||
    die "could not write Prometheus' configuration; see ${STATE_DIR}/logs/prometheus-config.log"
  start_process prometheus "$(command -v prometheus)" \
    --config.file="${dir}/prometheus.yml" --storage.tsdb.path="${dir}/data" \
    --storage.tsdb.retention.time=6h --web.listen-address="127.0.0.1:${PROMETHEUS_PORT}" \
    --web.enable-lifecycle --log.level=warn
  wait_for prometheus 60 "Prometheus on 127.0.0.1:${PROMETHEUS_PORT}" \
    curl -fsS "http://127.0.0.1:${PROMETHEUS_PORT}/-/ready"
  start_process prometheus-config "${python}" "${CONTROLPLANE_MODULES}/monitors_to_scrape_config.py" \
    --kubeconfig "${KUBECONFIG_PATH}" --scrape-network "${NODE_POD_CIDR}" \
    --out "${dir}/prometheus.yml" --reload-url "http://127.0.0.1:${PROMETHEUS_PORT}/-/reload"
}
