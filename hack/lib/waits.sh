#!/usr/bin/env bash
# Waits: retries, polling until a command succeeds, Deployments rolled out.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# retry ATTEMPTS DELAY_SECONDS COMMAND...: for steps that race a webhook or a CRD becoming ready.
retry() {
  local attempts="$1" delay="$2" attempt=1
  shift 2
  until "$@"; do
    if [[ "${attempt}" -ge "${attempts}" ]]; then
      return 1
    fi
    log "attempt ${attempt}/${attempts} failed; trying again in ${delay}s"
    attempt=$((attempt + 1))
    sleep "${delay}"
  done
}

# wait_until TIMEOUT_SECONDS WHAT COMMAND...: poll COMMAND every 3 seconds until it succeeds.
wait_until() {
  local timeout="$1" what="$2" deadline
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      warn "timed out after ${timeout}s waiting for ${what}"
      return 1
    fi
    sleep 3
  done
}

wait_for_deployments() {
  local namespace="$1" timeout="$2" name
  shift 2
  for name in "$@"; do
    log "waiting for deployment ${namespace}/${name}"
    kube -n "${namespace}" rollout status "deployment/${name}" --timeout="${timeout}" >/dev/null || return 1
  done
}
