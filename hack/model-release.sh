#!/usr/bin/env bash
# Roll out a new model version of an InferenceService as a canary and see it through to its
# verdict. `servekit-canary start` puts the new version beside the stable one, then
#   --mode cli         `servekit-canary run` analyses the Prometheus metrics from here, step by
#                      step, and promotes the canary or rolls it back;
#   --mode controller  a CanaryAnalysis (servekit.dev/v1alpha1) is applied first, the
#                      servekit-canary controller in the cluster does the same analysis, and this
#                      waits for its status.phase: Succeeded or Failed.
# .github/workflows/model-release.yml runs it; it works the same from a laptop.
#
# Usage: hack/model-release.sh --isvc NAME --name CANARY (--storage-uri URI | --image REF) [options]
#
#   -n, --namespace NS      namespace of the InferenceService (default: default)
#   --isvc NAME             the InferenceService
#   --name CANARY           the canary's predictor name, e.g. v2 (a DNS label)
#   --storage-uri URI       where the new model version is
#   --image REF             the new predictor image
#   --weight N              the canary's first traffic percent (default: servekit-canary's)
#   --mode M                cli or controller: where the analysis runs (default: cli)
#   --prometheus-url URL    the Prometheus the analysis queries (cli mode: this or the next)
#   --prometheus-service NS/SERVICE:PORT
#                           cli mode: reach an in-cluster Prometheus through kubectl port-forward
#   --steps LIST            traffic steps in percent, e.g. 10,25,50
#   --interval DURATION     time between checks, e.g. 1m
#   --threshold N           failed checks before a rollback
#   --min-success-rate PCT  least percent of non-5xx responses
#   --max-p99-ms MS         highest p99 latency in milliseconds
#   --timeout SECONDS       controller mode: longest wait for the verdict (default: 3600)
#   --dry-run               print the commands (and the CanaryAnalysis); run and change nothing
#   -h, --help              show this help
#
# Analysis flags left out take servekit-canary's defaults. Exit status: 0 promoted, 1 rolled back,
# 2 bad usage, a tool or API error, or no verdict within --timeout. Needs servekit-canary (the
# servekit package) and, for --mode controller or --prometheus-service, kubectl; both use the
# current kubeconfig context.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly EXIT_PROMOTED=0 EXIT_ROLLED_BACK=1 EXIT_ERROR=2
readonly CANARY_RESOURCE="canaryanalyses.servekit.dev"
readonly POLL_SECONDS="${MODEL_RELEASE_POLL_SECONDS:-10}"
readonly DNS_LABEL='^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$'

namespace="default"
isvc=""
canary_name=""
storage_uri=""
image=""
weight=""
mode="cli"
prometheus_url=""
prometheus_service=""
steps=""
interval=""
threshold=""
min_success_rate=""
max_p99_ms=""
timeout=3600
dry_run=false

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --namespace) need_value "$@"; namespace="$2"; shift 2 ;;
    --isvc) need_value "$@"; isvc="$2"; shift 2 ;;
    --name) need_value "$@"; canary_name="$2"; shift 2 ;;
    --storage-uri) need_value "$@"; storage_uri="$2"; shift 2 ;;
    --image) need_value "$@"; image="$2"; shift 2 ;;
    --weight) need_value "$@"; weight="$2"; shift 2 ;;
    --mode) need_value "$@"; mode="$2"; shift 2 ;;
    --prometheus-url) need_value "$@"; prometheus_url="$2"; shift 2 ;;
    --prometheus-service) need_value "$@"; prometheus_service="$2"; shift 2 ;;
    --steps) need_value "$@"; steps="$2"; shift 2 ;;
    --interval) need_value "$@"; interval="$2"; shift 2 ;;
    --threshold) need_value "$@"; threshold="$2"; shift 2 ;;
    --min-success-rate) need_value "$@"; min_success_rate="$2"; shift 2 ;;
    --max-p99-ms) need_value "$@"; max_p99_ms="$2"; shift 2 ;;
    --timeout) need_value "$@"; timeout="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

# check_value FLAG VALUE REGEX EXPECTED: a usage error naming the flag, the value and the form.
check_value() {
  local flag="$1" value="$2" regex="$3" expected="$4"
  if [[ -n "${value}" && ! "${value}" =~ ${regex} ]]; then
    usage_error "${flag} '${value}' is not ${expected}"
  fi
}

[[ -n "${isvc}" ]] || usage_error "--isvc is required"
[[ -n "${canary_name}" ]] || usage_error "--name is required"
[[ -n "${storage_uri}${image}" ]] || usage_error "give the new version: --storage-uri, --image or both"
check_value --namespace "${namespace}" "${DNS_LABEL}" "a namespace name (lower-case letters, digits, '-')"
check_value --isvc "${isvc}" "${DNS_LABEL}" "an InferenceService name (lower-case letters, digits, '-')"
check_value --name "${canary_name}" "${DNS_LABEL}" "a predictor name (lower-case letters, digits, '-')"
check_value --weight "${weight}" '^(100|[1-9][0-9]?)$' "a percent from 1 to 100"
check_value --mode "${mode}" '^(cli|controller)$' "cli or controller"
check_value --steps "${steps}" '^[0-9]+(,[0-9]+)*$' "a comma-separated list of percents, e.g. 10,25,50"
check_value --interval "${interval}" '^([0-9]+(ms|s|m|h))+$' "a duration such as 30s, 1m or 1m30s"
check_value --threshold "${threshold}" '^[1-9][0-9]*$' "a whole number of checks >= 1"
check_value --min-success-rate "${min_success_rate}" '^(100(\.0+)?|[0-9]{1,2}(\.[0-9]+)?)$' "a percent from 0 to 100"
check_value --max-p99-ms "${max_p99_ms}" '^([1-9][0-9]*(\.[0-9]+)?|0?\.[0-9]*[1-9][0-9]*)$' "a number of milliseconds > 0"
check_value --timeout "${timeout}" '^[1-9][0-9]*$' "a whole number of seconds"
check_value --prometheus-url "${prometheus_url}" '^https?://[^[:space:]"]+$' "an http:// or https:// URL"
check_value --prometheus-service "${prometheus_service}" '^[a-z0-9-]+/[a-z0-9.-]+:[0-9]+$' "NAMESPACE/SERVICE:PORT"
if [[ "${mode}" == cli ]]; then
  if [[ -z "${prometheus_url}" && -z "${prometheus_service}" ]]; then
    usage_error "--mode cli needs --prometheus-url or --prometheus-service (the analysis runs here)"
  fi
  if [[ -n "${prometheus_url}" && -n "${prometheus_service}" ]]; then
    usage_error "give --prometheus-url or --prometheus-service, not both"
  fi
elif [[ -n "${prometheus_service}" ]]; then
  usage_error "--prometheus-service is for --mode cli; the controller reaches Prometheus from inside the cluster"
fi

# fail MESSAGE: a tool or API problem. Exit status 2, so that 1 always means "rolled back".
fail() {
  printf '%s: error: %s\n' "${SCRIPT_NAME}" "$*" >&2
  exit "${EXIT_ERROR}"
}

# run_or_show COMMAND...: run it, or with --dry-run print it as a shell line (words quoted only
# where the shell needs it).
run_or_show() {
  local word words=()
  if [[ "${dry_run}" == true ]]; then
    for word in "$@"; do
      if [[ "${word}" =~ ^[A-Za-z0-9_./:,=@%+-]+$ ]]; then
        words+=("${word}")
      else
        words+=("${word@Q}")
      fi
    done
    echo "would run: ${words[*]}"
    return 0
  fi
  "$@"
}

start_canary() {
  local args=(servekit-canary start "${isvc}" --namespace "${namespace}" --name "${canary_name}")
  [[ -z "${storage_uri}" ]] || args+=(--storage-uri "${storage_uri}")
  [[ -z "${image}" ]] || args+=(--image "${image}")
  [[ -z "${weight}" ]] || args+=(--weight "${weight}")
  log "starting canary '${canary_name}' on inferenceservice ${namespace}/${isvc}"
  run_or_show "${args[@]}" || fail "servekit-canary start failed (exit status $?)"
}

# The analysis flags that were given, as servekit-canary run takes them.
analysis_flags() {
  [[ -z "${steps}" ]] || printf '%s\n' --steps "${steps}"
  [[ -z "${interval}" ]] || printf '%s\n' --interval "${interval}"
  [[ -z "${threshold}" ]] || printf '%s\n' --threshold "${threshold}"
  [[ -z "${min_success_rate}" ]] || printf '%s\n' --min-success-rate "${min_success_rate}"
  [[ -z "${max_p99_ms}" ]] || printf '%s\n' --max-p99-ms "${max_p99_ms}"
}

# cli mode: the analysis runs in this process tree; servekit-canary run's exit status is the verdict.
release_with_cli() {
  local url="${prometheus_url}" service target port status=0 flags
  if [[ -n "${prometheus_service}" ]]; then
    service="${prometheus_service%%:*}"
    port="${prometheus_service##*:}"
    target="service/${service#*/}"
    if [[ "${dry_run}" == true ]]; then
      log "would port-forward to ${service%%/*}/${target}:${port}"
      url="http://127.0.0.1:FORWARDED-PORT"
    else
      trap stop_port_forwards EXIT
      start_port_forward "${service%%/*}" "${target}" "${port}"
      url="http://127.0.0.1:${PORT_FORWARD_PORT}"
    fi
  fi
  mapfile -t flags < <(analysis_flags)
  start_canary
  log "analysing canary '${canary_name}' against ${url}"
  run_or_show servekit-canary run "${isvc}" --namespace "${namespace}" --prometheus-url "${url}" "${flags[@]}" ||
    status=$?
  verdict "${status}"
}

# The CanaryAnalysis for --mode controller: the InferenceService and the analysis flags given.
canary_analysis_manifest() {
  printf 'apiVersion: servekit.dev/v1alpha1\nkind: CanaryAnalysis\n'
  printf 'metadata:\n  name: %s\n  namespace: %s\n' "${isvc}" "${namespace}"
  printf 'spec:\n  inferenceService: %s\n' "${isvc}"
  [[ -z "${steps}" ]] || printf '  steps: [%s]\n' "${steps//,/, }"
  [[ -z "${interval}" ]] || printf '  interval: "%s"\n' "${interval}"
  [[ -z "${threshold}" ]] || printf '  threshold: %s\n' "${threshold}"
  [[ -z "${min_success_rate}" ]] || printf '  minSuccessRate: %s\n' "${min_success_rate}"
  [[ -z "${max_p99_ms}" ]] || printf '  maxP99Ms: %s\n' "${max_p99_ms}"
  [[ -z "${prometheus_url}" ]] || printf '  prometheusUrl: "%s"\n' "${prometheus_url}"
}

# "PHASE<newline>STATUS-AS-JSON" of the CanaryAnalysis; empty lines when it has no status yet.
analysis_state() {
  kube -n "${namespace}" get "${CANARY_RESOURCE}" "${isvc}" -o jsonpath='{.status.phase}{"\n"}{.status}'
}

# controller mode: the controller in the cluster analyses; its status.phase is the verdict. A
# verdict counts only once the status differs from the one before `start`, so the phase left by an
# earlier rollout is never taken for this one's.
release_with_controller() {
  local manifest before state phase="" last="" deadline gate_noted=false
  manifest="$(canary_analysis_manifest)"
  if [[ "${dry_run}" == true ]]; then
    printf 'would apply:\n%s\n' "${manifest}"
    start_canary
    return "${EXIT_PROMOTED}"
  fi
  log "applying CanaryAnalysis ${namespace}/${isvc}"
  kube apply --server-side --field-manager=servekit-model-release -f - <<<"${manifest}" >/dev/null ||
    fail "could not apply CanaryAnalysis ${namespace}/${isvc} (is the servekit-canary controller's CRD installed?)"
  before="$(analysis_state)" || fail "could not read CanaryAnalysis ${namespace}/${isvc}"
  start_canary
  deadline=$((SECONDS + timeout))
  while true; do
    state="$(analysis_state)" || fail "could not read CanaryAnalysis ${namespace}/${isvc}"
    phase="${state%%$'\n'*}"
    if [[ "${phase}" != "${last}" ]]; then
      log "CanaryAnalysis ${namespace}/${isvc}: phase ${phase:-(none yet)}"
      last="${phase}"
    fi
    if [[ "${state}" != "${before}" ]]; then
      case "${phase}" in
        Succeeded) verdict "${EXIT_PROMOTED}" ;;
        Failed) verdict "${EXIT_ROLLED_BACK}" ;;
        Paused)
          if [[ "${gate_noted}" == false ]]; then
            log "held at a manual gate: 'servekit-canary promote ${isvc} --namespace ${namespace}' lets it go on"
            gate_noted=true
          fi
          ;;
      esac
    fi
    if [[ "${SECONDS}" -ge "${deadline}" ]]; then
      fail "no verdict from the controller within ${timeout}s (phase ${phase:-none}); the canary is still in place"
    fi
    sleep "${POLL_SECONDS}"
  done
}

# verdict STATUS: say what happened and exit with servekit-canary run's convention.
verdict() {
  case "$1" in
    "${EXIT_PROMOTED}")
      [[ "${dry_run}" == true ]] || log "PROMOTED: canary '${canary_name}' now serves all of ${namespace}/${isvc}"
      exit "${EXIT_PROMOTED}"
      ;;
    "${EXIT_ROLLED_BACK}")
      log "ROLLED BACK: canary '${canary_name}' of ${namespace}/${isvc} failed its analysis"
      show_rollback_events
      exit "${EXIT_ROLLED_BACK}"
      ;;
    *) fail "the rollout of canary '${canary_name}' stopped with exit status $1 (usage or API error)" ;;
  esac
}

# What the controller and KServe recorded about the InferenceService. Never fails.
show_rollback_events() {
  command -v kubectl >/dev/null 2>&1 || return 0
  {
    echo "----- events of inferenceservice ${namespace}/${isvc}"
    kube -n "${namespace}" get events --field-selector "involvedObject.name=${isvc}" \
      --sort-by=.lastTimestamp 2>&1 | tail -n 20
  } >&2 || true
}

if [[ "${dry_run}" == false ]]; then
  tools=(servekit-canary)
  if [[ "${mode}" == controller || -n "${prometheus_service}" ]]; then
    tools+=(kubectl)
  fi
  (require_tools "${tools[@]}") || exit "${EXIT_ERROR}"
fi

case "${mode}" in
  cli) release_with_cli ;;
  controller) release_with_controller ;;
esac
