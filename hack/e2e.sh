#!/usr/bin/env bash
# The whole life of a model on a kind cluster: create the cluster, install KServe (Standard mode),
# build the predictor image and load it, deploy the iris model with Helm, call it (v2 infer and
# v1 predict through a port-forward), run `helm test`, roll out model version 2 as a Standard-mode
# canary and call both versions, promote the canary, uninstall the release, deploy the kustomize
# base and call it, then delete the cluster.
#
# Usage: hack/e2e.sh [--keep] [--name CLUSTER] [--no-canary]
#
#   --keep          leave the cluster running at the end, also after a failure
#                   (delete it later with: hack/kind-up.sh --uninstall --name CLUSTER)
#   --name CLUSTER  kind cluster (default: servekit-e2e); an existing one is reused, then deleted
#   --no-canary     skip the canary rollout and the promotion
#   -h, --help      show this help
#
# Every check prints one line "RESULT <phase> <check> <what was seen>" (tests/e2e reads them);
# the run ends with "e2e: PASS". Needs docker (a running engine), kind, kubectl, helm, curl and python3.
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly HACK_DIR="${SERVEKIT_ROOT}/hack"
readonly E2E_DIR="${SERVEKIT_ROOT}/tests/e2e"
readonly IMAGE="servekit/predictor:dev"
readonly NAMESPACE="models"
readonly KUSTOMIZE_NAMESPACE="models-kustomize"
readonly RELEASE="iris"
readonly MODEL="iris"
readonly WAIT_SECONDS=600
# One setosa row: every model version must answer label 0.
readonly V2_REQUEST='{"inputs":[{"name":"features","datatype":"FP32","shape":[1,4],"data":[5.1,3.5,1.4,0.2]}]}'
readonly V1_REQUEST='{"instances":[[5.1,3.5,1.4,0.2]]}'
readonly EXPECTED_LABEL=0
readonly CANARY_NAME="v2"
readonly CANARY_PERCENT=20

name="servekit-e2e"
keep=false
canary=true

while [[ $# -gt 0 ]]; do
  case "$1" in
    --keep) keep=true; shift ;;
    --name) need_value "$@"; name="$2"; shift 2 ;;
    --no-canary) canary=false; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done

require_docker_engine
require_tools kind kubectl helm curl python3

isvc=""
started=${SECONDS}

finish() {
  local status=$?
  trap - EXIT
  stop_port_forwards
  if [[ ${status} -ne 0 ]]; then
    log "FAILED (exit status ${status}) after $((SECONDS - started))s"
    if [[ -n "${isvc}" ]]; then
      show_isvc_diagnostics "${NAMESPACE}" "${isvc}"
    fi
  fi
  if [[ "${keep}" == true ]]; then
    log "keeping kind cluster '${name}' (kubectl --context kind-${name}); delete it with: hack/kind-up.sh --uninstall --name ${name}"
  else
    bash "${HACK_DIR}/kind-up.sh" --uninstall --name "${name}" || warn "could not delete kind cluster '${name}'"
  fi
  exit "${status}"
}
trap finish EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

step() {
  log "===== $* ($((SECONDS - started))s)"
}

deploy() {
  bash "${HACK_DIR}/deploy.sh" --context "kind-${name}" --image "${IMAGE}" --timeout "${WAIT_SECONDS}" "$@"
}

deploy_release() {
  deploy --helm --namespace "${NAMESPACE}" --release "${RELEASE}" --values "${E2E_DIR}/values/kind.yaml" "$@"
}

http_post() {
  local port="$1" path="$2" body="$3"
  curl --silent --show-error --fail-with-body --max-time 15 \
    --retry 10 --retry-delay 2 --retry-connrefused \
    -H 'Content-Type: application/json' -d "${body}" "http://127.0.0.1:${port}${path}"
}

# check_v2_infer CHECK PORT VERSION: the setosa row gets label 0 from model version VERSION.
check_v2_infer() {
  local check="$1" port="$2" version="$3" reply
  reply="$(http_post "${port}" "/v2/models/${MODEL}/infer" "${V2_REQUEST}")" ||
    die "${check}: POST /v2/models/${MODEL}/infer failed: ${reply:-no answer}"
  python3 - "${check}" "${version}" "${EXPECTED_LABEL}" "${reply}" <<'PY'
import json
import sys

check, version, label, text = sys.argv[1:5]
reply = json.loads(text)
outputs = {output["name"]: output for output in reply.get("outputs", [])}
labels = outputs.get("label", {}).get("data")
problems = []
if labels != [int(label)]:
    problems.append(f"label {labels}, expected [{label}] (setosa)")
if reply.get("model_version") != version:
    problems.append(f"model_version {reply.get('model_version')!r}, expected {version!r}")
if problems:
    sys.exit(f"{check}: " + "; ".join(problems) + f"; reply: {text}")
print(f"RESULT {check} v2-infer label={labels[0]} model_version={reply['model_version']}")
PY
}

# check_v1_predict CHECK PORT: the setosa row gets prediction 0 over KServe's v1 protocol.
check_v1_predict() {
  local check="$1" port="$2" reply
  reply="$(http_post "${port}" "/v1/models/${MODEL}:predict" "${V1_REQUEST}")" ||
    die "${check}: POST /v1/models/${MODEL}:predict failed: ${reply:-no answer}"
  python3 - "${check}" "${EXPECTED_LABEL}" "${reply}" <<'PY'
import json
import sys

check, label, text = sys.argv[1:4]
predictions = json.loads(text).get("predictions")
if predictions != [int(label)]:
    sys.exit(f"{check}: predictions {predictions}, expected [{label}] (setosa); reply: {text}")
print(f"RESULT {check} v1-predict predictions={json.dumps(predictions, separators=(',', ':'))}")
PY
}

# check_predictor CHECK NAMESPACE SERVICE VERSION [v1]: call one predictor Service (port 80).
check_predictor() {
  local check="$1" namespace="$2" service="$3" version="$4" v1="${5:-}"
  start_port_forward "${namespace}" "service/${service}" 80
  check_v2_infer "${check}" "${PORT_FORWARD_PORT}" "${version}"
  if [[ -n "${v1}" ]]; then
    check_v1_predict "${check}" "${PORT_FORWARD_PORT}"
  fi
  stop_port_forwards
}

check_helm_test() {
  local check="$1" output
  if ! output="$(helm_cmd test "${RELEASE}" --namespace "${NAMESPACE}" --logs --timeout 5m 2>&1)"; then
    printf '%s\n' "${output}" >&2
    die "${check}: helm test ${RELEASE} failed"
  fi
  echo "RESULT ${check} helm-test passed"
}

seed_model_store() {
  local manifest="${E2E_DIR}/manifests/model-store.yaml"
  log "writing iris model versions 1 and 2 to PersistentVolumeClaim servekit-models"
  # A Job's pod template cannot change: run a fresh one each time.
  kube -n "${NAMESPACE}" delete job servekit-models-seed --ignore-not-found --wait=true >/dev/null
  kube -n "${NAMESPACE}" apply -f "${manifest}" >/dev/null
  if ! kube -n "${NAMESPACE}" wait --for=condition=Complete job/servekit-models-seed --timeout=300s >/dev/null; then
    kube -n "${NAMESPACE}" describe job servekit-models-seed >&2 || true
    kube -n "${NAMESPACE}" logs job/servekit-models-seed --tail=50 >&2 || true
    die "the model store Job did not complete"
  fi
  kube -n "${NAMESPACE}" logs job/servekit-models-seed | sed 's/^/  /'
}

check_canary_status() {
  local statuses expected="${CANARY_NAME}:true:${CANARY_PERCENT}"
  statuses="$(kube -n "${NAMESPACE}" get inferenceservice "${isvc}" \
    -o jsonpath='{range .status.canaryStatuses[*]}{.name}:{.ready}:{.trafficPercent}{" "}{end}')"
  if [[ "${statuses% }" != "${expected}" ]]; then
    die "canary status: KServe reports '${statuses% }', expected '${expected}' (name:ready:trafficPercent)"
  fi
  echo "RESULT canary status ${expected}"
}

no_canary_status() {
  [[ -z "$(kube -n "${NAMESPACE}" get inferenceservice "${isvc}" -o jsonpath='{.status.canaryStatuses[*].name}')" ]]
}

# ---------------------------------------------------------------------------------------------

step "kind cluster '${name}'"
bash "${HACK_DIR}/kind-up.sh" --name "${name}"
use_kube_context "kind-${name}"

step "KServe"
bash "${HACK_DIR}/install-kserve.sh" --context "kind-${name}" --timeout "${WAIT_SECONDS}"

step "predictor image"
bash "${HACK_DIR}/build-and-load.sh" --name "${name}" --image "${IMAGE}"

step "deploy the iris model with Helm"
deploy_release
isvc="$(kube -n "${NAMESPACE}" get inferenceservices -l "app.kubernetes.io/instance=${RELEASE}" \
  -o jsonpath='{.items[0].metadata.name}')"

step "call the model"
check_predictor stable "${NAMESPACE}" "${isvc}-predictor" 1 v1
check_helm_test stable

if [[ "${canary}" == true ]]; then
  step "canary: model version 2 next to version 1"
  seed_model_store
  deploy_release --values "${E2E_DIR}/values/canary.yaml"
  check_canary_status
  check_predictor canary/v1 "${NAMESPACE}" "${isvc}-v1-predictor" 1
  check_predictor "canary/${CANARY_NAME}" "${NAMESPACE}" "${isvc}-${CANARY_NAME}-predictor" 2
  check_helm_test canary

  step "promote the canary"
  deploy_release --values "${E2E_DIR}/values/promote.yaml"
  wait_until 120 "KServe to drop the canary from the status" no_canary_status ||
    die "promoted: KServe still reports canary statuses"
  echo "RESULT promoted status no-canary"
  check_predictor promoted "${NAMESPACE}" "${isvc}-${CANARY_NAME}-predictor" 2 v1
  check_helm_test promoted
fi

step "remove the Helm release"
deploy --helm --namespace "${NAMESPACE}" --release "${RELEASE}" --uninstall
if [[ -n "$(kube -n "${NAMESPACE}" get inferenceservices -l "app.kubernetes.io/instance=${RELEASE}" -o name)" ]]; then
  die "helm uninstall left the InferenceService behind"
fi
echo "RESULT helm uninstall removed"
isvc=""

step "deploy the kustomize base"
deploy --kustomize --overlay base --namespace "${KUSTOMIZE_NAMESPACE}"
check_predictor kustomize "${KUSTOMIZE_NAMESPACE}" iris-predictor 1 v1
deploy --kustomize --overlay base --namespace "${KUSTOMIZE_NAMESPACE}" --uninstall
echo "RESULT kustomize uninstall removed"

step "done"
echo "e2e: PASS"
