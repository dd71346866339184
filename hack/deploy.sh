#!/usr/bin/env bash
# Deploy the iris example model (baked into the predictor image) as a KServe InferenceService,
# with the Helm chart (helm upgrade --install) or with the kustomize manifests (kubectl apply -k),
# then wait until KServe has rolled out every predictor and reports the InferenceService Ready.
# Idempotent: running it again converges the release to the given values.
#
# Usage: hack/deploy.sh [--helm | --kustomize] [--namespace NS] [options] [--uninstall]
#
#   --helm              deploy helm/servekit as release --release (the default)
#   --kustomize         deploy manifests/<--overlay> (InferenceService "iris")
#   --namespace NS      namespace (default: models); created when missing
#   --release NAME      Helm release name (default: iris; the InferenceService is NAME-servekit)
#   --values FILE       extra Helm values file (repeatable; later files win)
#   --set KEY=VALUE     extra Helm value (repeatable)
#   --overlay DIR       kustomize directory under manifests/ (default: base)
#   --image REF         predictor image (default: servekit/predictor:dev, as hack/build-and-load.sh loads it)
#   --pull-policy P     imagePullPolicy (default: Never: the image was loaded into kind)
#   --context CONTEXT   kubectl context (default: the current context)
#   --timeout SECONDS   longest wait for the InferenceService (default: 600)
#   --uninstall         remove the release (or the kustomize objects) instead
#   -h, --help          show this help
#
# Needs kubectl, and helm for --helm; for --kustomize a Python with PyYAML ($SERVEKIT_PYTHON, else
# the repository's .venv, else python3). KServe must be installed (hack/install-kserve.sh).
set -euo pipefail

# Pinned version: the Helm release servekit is tested with (Helm 3 and 4 render the chart alike).
readonly HELM_VERSION="v3.16.3"

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

method="helm"
namespace="models"
release="iris"
overlay="base"
image="servekit/predictor:dev"
pull_policy="Never"
context="${KUBE_CONTEXT:-}"
timeout=600
action="install"
helm_args=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    --helm) method="helm"; shift ;;
    --kustomize) method="kustomize"; shift ;;
    --namespace) need_value "$@"; namespace="$2"; shift 2 ;;
    --release) need_value "$@"; release="$2"; shift 2 ;;
    --values)
      need_value "$@"
      [[ -f "$2" ]] || usage_error "--values file '$2' does not exist"
      helm_args+=(--values "$2")
      shift 2
      ;;
    --set) need_value "$@"; helm_args+=(--set "$2"); shift 2 ;;
    --overlay) need_value "$@"; overlay="$2"; shift 2 ;;
    --image) need_value "$@"; image="$2"; shift 2 ;;
    --pull-policy) need_value "$@"; pull_policy="$2"; shift 2 ;;
    --context) need_value "$@"; context="$2"; shift 2 ;;
    --timeout) need_value "$@"; timeout="$2"; shift 2 ;;
    --uninstall) action="uninstall"; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage_error "unknown option: $1" ;;
  esac
done
case "${pull_policy}" in
  Always | IfNotPresent | Never) ;;
  *) usage_error "--pull-policy must be Always, IfNotPresent or Never, got '${pull_policy}'" ;;
esac
if [[ ! "${timeout}" =~ ^[1-9][0-9]*$ ]]; then
  usage_error "--timeout must be a whole number of seconds, got '${timeout}'"
fi
if [[ "${method}" == kustomize && ${#helm_args[@]} -gt 0 ]]; then
  usage_error "--values and --set are Helm options; with --kustomize edit an overlay instead"
fi
# The image reference as repository and tag or digest (a registry port is not a tag).
image_digest=""
image_tag=""
if [[ "${image}" == *@* ]]; then
  image_repository="${image%@*}"
  image_digest="${image#*@}"
else
  image_repository="${image%:*}"
  image_tag="${image##*:}"
  if [[ "${image}" != *:* || "${image_tag}" == */* ]]; then
    usage_error "--image '${image}' needs an explicit tag or digest, e.g. ${image}:dev"
  fi
fi
kustomize_dir="${SERVEKIT_ROOT}/manifests/${overlay}"
if [[ "${method}" == kustomize && ! -f "${kustomize_dir}/kustomization.yaml" ]]; then
  usage_error "--overlay '${overlay}': no kustomization.yaml in ${kustomize_dir}"
fi

require_tools kubectl
if [[ "${method}" == helm ]]; then
  require_tools helm
  warn_if_version_differs helm "$(helm version --short 2>/dev/null)" "${HELM_VERSION}"
else
  find_servekit_python yaml
fi
use_kube_context "${context}"
require_cluster

# ---------------------------------------------------------------------------------------------
# kustomize: a throw-away kustomization on top of the chosen one points the image at the local
# build; the committed manifests stay as they are.

kustomize_workdir=""
cleanup() {
  if [[ -n "${kustomize_workdir}" ]]; then
    rm -rf "${kustomize_workdir}"
  fi
}
trap cleanup EXIT

# Relative path from directory FROM to TO, both absolute: kustomize refuses absolute resources.
relative_path() {
  local from="$1" to="$2" up="" i
  local -a parts
  IFS=/ read -r -a parts <<<"${from#/}"
  for ((i = 0; i < ${#parts[@]}; i++)); do
    up+="../"
  done
  echo "${up}${to#/}"
}

# The image and imagePullPolicy on top of the chosen kustomization, written by
# hack/deploy_kustomization.py from what the chosen one renders (YAML read and written in Python).
write_kustomization() {
  kustomize_workdir="$(mktemp -d)"
  local workdir rendered image_args=(--image-tag "${image_tag}")
  workdir="$(cd "${kustomize_workdir}" && pwd -P)"
  [[ -z "${image_digest}" ]] || image_args=(--image-digest "${image_digest}")
  rendered="$(kubectl kustomize "${kustomize_dir}")" || die "kubectl kustomize ${kustomize_dir} failed"
  "${SERVEKIT_PY}" "${SERVEKIT_ROOT}/hack/deploy_kustomization.py" \
    --resource "$(relative_path "${workdir}" "${kustomize_dir}")" --namespace "${namespace}" \
    --image-repository "${image_repository}" "${image_args[@]}" --pull-policy "${pull_policy}" \
    <<<"${rendered}" >"${kustomize_workdir}/kustomization.yaml"
}

deployed_isvc() {
  local selector="app.kubernetes.io/instance=${release}"
  if [[ "${method}" == kustomize ]]; then
    selector="app.kubernetes.io/instance=iris,app.kubernetes.io/managed-by=kustomize"
  fi
  kube -n "${namespace}" get inferenceservices -l "${selector}" -o jsonpath='{.items[*].metadata.name}'
}

require_kserve() {
  if ! kube get crd inferenceservices.serving.kserve.io >/dev/null 2>&1; then
    die "KServe is not installed on this cluster: run hack/install-kserve.sh first"
  fi
}

install() {
  require_kserve
  ensure_namespace "${namespace}"
  if [[ "${method}" == helm ]]; then
    log "helm upgrade --install ${release} helm/servekit -n ${namespace} (image ${image}, pullPolicy ${pull_policy})"
    helm_cmd upgrade --install "${release}" "${SERVEKIT_ROOT}/helm/servekit" \
      --namespace "${namespace}" \
      --set-string "image.repository=${image_repository}" \
      --set-string "image.tag=${image_tag}" \
      --set-string "image.digest=${image_digest}" \
      --set-string "image.pullPolicy=${pull_policy}" \
      "${helm_args[@]}" >/dev/null
  else
    write_kustomization
    log "kubectl apply -k manifests/${overlay} -n ${namespace} (image ${image}, pullPolicy ${pull_policy})"
    kube apply -k "${kustomize_workdir}" >/dev/null
  fi
  local isvc
  isvc="$(deployed_isvc)"
  [[ -n "${isvc}" ]] || die "no InferenceService of this deployment found in namespace ${namespace}"
  wait_for_isvc "${namespace}" "${isvc}" "${timeout}" || die "inferenceservice ${namespace}/${isvc} did not become ready"
  log "call it: kubectl${context:+ --context ${context}} -n ${namespace} port-forward service/$(isvc_predictor_deployments "${namespace}" "${isvc}" | sed -n 1p) 8080:80"
}

uninstall() {
  if [[ "${method}" == helm ]]; then
    if helm_cmd status "${release}" --namespace "${namespace}" >/dev/null 2>&1; then
      log "helm uninstall ${release} -n ${namespace}"
      helm_cmd uninstall "${release}" --namespace "${namespace}" --wait >/dev/null
    else
      log "no Helm release ${release} in namespace ${namespace}"
    fi
  else
    write_kustomization
    log "kubectl delete -k manifests/${overlay} -n ${namespace}"
    kube delete -k "${kustomize_workdir}" --ignore-not-found --wait=true >/dev/null
  fi
}

case "${action}" in
  install) install ;;
  uninstall) uninstall ;;
esac
