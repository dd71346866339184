#!/usr/bin/env bash
# Restore a backup made by hack/backup.sh into a namespace of this or another cluster: its Helm
# releases are installed again from the chart and values in the backup (Helm's Go SDK, no helm
# binary), then every backed-up InferenceService, canary history ConfigMap, CanaryAnalysis and
# ServiceAccount is created, or patched back to its backed-up content where it exists. A second
# run of the same restore changes nothing. docs/backup.md has the details.
#
# Usage: hack/restore.sh BACKUP [-n NAMESPACE] [options]
#
#   BACKUP                    the backup: the folder or the .tar.gz (.tgz) hack/backup.sh wrote
#   -n, --namespace NS        where to restore (default: the namespace the backup was taken from);
#                             created, with the source namespace's labels, when it does not exist
#   --force                   restore into a namespace that already holds InferenceServices,
#                             CanaryAnalyses, canary history or Helm releases: the backed-up
#                             ones replace theirs (a re-run of the same restore needs no --force)
#   --model-store URI_PREFIX=DIR
#                             first check that the storage still holds the backed-up models: the
#                             model.yaml under DIR (a local mount or copy of URI_PREFIX) must name
#                             the backed-up sha256; repeatable; a difference stops the restore
#   --wait SECONDS            then wait up to SECONDS for each InferenceService to be Ready
#   --context CTX             kubectl context (default: the current one)
#   --dry-run                 check the backup and the cluster and print what would be done
#   -h, --help                show this help
#
# Exit status: 0 restored, 1 a bad backup or a cluster that cannot take it (missing CRDs, a
# namespace that is not empty, an API error), 2 bad usage. Needs kubectl, tar for an archive,
# and a Python with servekit, and helm-python-sdk for Helm releases ($SERVEKIT_PYTHON, else the
# repository's .venv, else python3).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

backup=""
namespace=""
context=""
force=false
dry_run=false
wait_seconds=0
model_stores=()

while [[ $# -gt 0 ]]; do
  case "$1" in
    -n | --namespace) need_value "$@"; namespace="$2"; shift 2 ;;
    --force) force=true; shift ;;
    --model-store) need_value "$@"; model_stores+=("$2"); shift 2 ;;
    --wait) need_value "$@"; wait_seconds="$2"; shift 2 ;;
    --context) need_value "$@"; context="$2"; shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option: $1" ;;
    *)
      [[ -z "${backup}" ]] || usage_error "unexpected argument '$1': give one BACKUP"
      backup="$1"
      shift
      ;;
  esac
done

[[ -n "${backup}" ]] || usage_error "BACKUP is required: the folder or .tar.gz hack/backup.sh wrote"
[[ -e "${backup}" ]] || usage_error "BACKUP ${backup} does not exist"
[[ -z "${namespace}" ]] || check_dns_label --namespace "${namespace}"
# No leading 0: bash reads 08 as a bad octal number in the -gt below, and would skip the wait.
[[ "${wait_seconds}" =~ ^(0|[1-9][0-9]*)$ ]] ||
  usage_error "--wait '${wait_seconds}' is not a whole number of seconds (digits, no leading 0)"
for store in "${model_stores[@]}"; do
  check_model_store "${store}"
done

require_tools kubectl
find_servekit_python
start_workdir

# The backup's folder: BACKUP itself, or where its archive unpacks (the index at the top or one
# folder down, as hack/backup.sh packs it).
unpack_backup() {
  if [[ -d "${backup}" ]]; then
    BACKUP_DIR="${backup}"
    return
  fi
  require_tools tar
  mkdir -p "${WORKDIR}/unpacked"
  if ! tar -xzf "${backup}" -C "${WORKDIR}/unpacked" 2>"${WORKDIR}/stderr"; then
    die "cannot unpack ${backup}: it is not a readable .tar.gz ($(tail -n 1 "${WORKDIR}/stderr"))"
  fi
  local found=()
  mapfile -t found < <(find "${WORKDIR}/unpacked" -maxdepth 2 -name index.yaml -printf '%h\n')
  [[ ${#found[@]} -eq 1 ]] ||
    die "${backup} holds ${#found[@]} index.yaml files, expected 1: it is not an archive hack/backup.sh wrote"
  BACKUP_DIR="${found[0]}"
}

# Every custom resource the backup holds must be served by the target (a chart in the backup
# brings its own crds/).
check_apis() {
  local group_version plural missing=()
  backup_py required-apis "${BACKUP_DIR}" >"${WORKDIR}/apis.txt"
  while read -r group_version plural; do
    if ! kube get --raw "/apis/${group_version}" 2>/dev/null | grep -q "\"name\":\"${plural}\""; then
      missing+=("${plural}.${group_version}")
    fi
  done <"${WORKDIR}/apis.txt"
  if [[ ${#missing[@]} -gt 0 ]]; then
    die "the target cluster does not serve ${missing[*]}: install their CRDs first (InferenceService: KServe >= 0.20, hack/install-kserve.sh; CanaryAnalysis: kubectl apply -k manifests/crd)"
  fi
  log "the target serves every kind in the backup"
}

# What a restore would write over: the kinds it restores, already in the namespace.
occupants() {
  local resource
  for resource in inferenceservices.serving.kserve.io canaryanalyses.servekit.dev; do
    kube -n "${namespace}" get "${resource}" -o name 2>/dev/null || true
  done
  kube -n "${namespace}" get configmaps -l "${HISTORY_SELECTOR}" -o name
  kube -n "${namespace}" get secrets -l owner=helm -o name
}

# Sets NAMESPACE_EXISTS; stops on a namespace being deleted, or one that holds objects of
# another restore or install, unless --force.
check_namespace() {
  local state phase marker shown taken=()
  NAMESPACE_EXISTS=false
  if ! state="$(kube get namespace "${namespace}" \
    -o jsonpath='{.status.phase} {.metadata.annotations.servekit\.dev/restored-from}' 2>"${WORKDIR}/stderr")"; then
    grep -q "(NotFound)" "${WORKDIR}/stderr" || die "reading namespace ${namespace}: $(tail -n 1 "${WORKDIR}/stderr")"
    log "namespace ${namespace} does not exist: it will be created"
    return
  fi
  NAMESPACE_EXISTS=true
  read -r phase marker <<<"${state}"
  if [[ "${phase}" == Terminating ]]; then
    die "namespace ${namespace} is being deleted: wait until it is gone (kubectl wait --for=delete namespace/${namespace}) or pick another"
  fi
  if [[ "${marker:-}" == "${BACKUP_ID}" ]]; then
    log "namespace ${namespace} holds an earlier run of this restore: going on from there"
    return
  fi
  # The whole list first (a pipe into head would kill occupants with SIGPIPE under pipefail).
  occupants >"${WORKDIR}/occupants.txt"
  mapfile -t taken <"${WORKDIR}/occupants.txt"
  if [[ ${#taken[@]} -gt 0 && "${force}" != true ]]; then
    shown="${taken[*]:0:10}"
    [[ ${#taken[@]} -le 10 ]] || shown+=" and $((${#taken[@]} - 10)) more"
    die "namespace ${namespace} is not empty (${shown}): restore into a new namespace with -n, or pass --force to replace these with the backed-up objects"
  fi
}

prepare_namespace() {
  if [[ "${NAMESPACE_EXISTS}" == true ]]; then
    kube annotate --overwrite namespace "${namespace}" "servekit.dev/restored-from=${BACKUP_ID}" >/dev/null
  else
    backup_py namespace "${BACKUP_DIR}" --namespace "${namespace}" | kube create -f - >/dev/null
    log "created namespace ${namespace}"
  fi
}

# restore_object FILE RESOURCE NAME: create it, or patch it to the backed-up content.
restore_object() {
  local file="$1" resource="$2" name="$3" what="${2%%.*}/$3"
  if kube -n "${namespace}" get "${resource}" "${name}" -o json >"${WORKDIR}/live.json" 2>"${WORKDIR}/stderr"; then
    backup_py patch "${file}" <"${WORKDIR}/live.json" >"${WORKDIR}/patch.json"
    if [[ "$(cat "${WORKDIR}/patch.json")" == "[]" ]]; then
      log "${what}: unchanged"
    elif [[ "${dry_run}" == true ]]; then
      log "${what}: would be patched to the backed-up content"
    else
      kube -n "${namespace}" patch "${resource}" "${name}" --type=json --patch-file="${WORKDIR}/patch.json" >/dev/null
      log "${what}: patched to the backed-up content"
    fi
  elif ! grep -q "(NotFound)" "${WORKDIR}/stderr"; then
    die "reading ${what} in ${namespace}: $(tail -n 1 "${WORKDIR}/stderr")"
  elif [[ "${dry_run}" == true ]]; then
    log "${what}: would be created"
  else
    kube create -f "${file}" >/dev/null
    log "${what}: created"
  fi
}

# isvc_condition_true NAME TYPE: KServe reports the condition True.
isvc_condition_true() {
  [[ "$(kube -n "${namespace}" get inferenceservice "$1" \
    -o jsonpath="{.status.conditions[?(@.type==\"$2\")].status}")" == True ]]
}

# wait_ready NAME: Ready (and CanaryPredictorReady with canaries); in Standard mode also exactly
# the predictor Deployments the spec asks for, rolled out. Not `kubectl wait`: it compares
# status.observedGeneration with the InferenceService's generation, and KServe writes its
# Deployment's there (docs/controlplane.md), so after a patch it would never end.
wait_ready() {
  local name="$1" mode deployments=()
  mode="$(kube -n "${namespace}" get inferenceservice "${name}" \
    -o jsonpath='{.metadata.annotations.serving\.kserve\.io/deploymentMode}')"
  log "waiting for inferenceservice ${namespace}/${name} to be Ready"
  if [[ "${mode}" != Knative && "${mode}" != Serverless ]]; then
    wait_until "${wait_seconds}" "the predictor Deployments of ${name}" \
      isvc_deployments_match_spec "${namespace}" "${name}" || return 1
    mapfile -t deployments < <(isvc_predictor_deployments "${namespace}" "${name}")
    wait_for_deployments "${namespace}" "${wait_seconds}s" "${deployments[@]}" || return 1
  fi
  wait_until "${wait_seconds}" "${name} to be Ready" isvc_condition_true "${name}" Ready || return 1
  if [[ -n "$(kube -n "${namespace}" get inferenceservice "${name}" -o jsonpath='{.spec.canary[*].predictor.name}')" ]]; then
    wait_until "${wait_seconds}" "the canary of ${name}" isvc_condition_true "${name}" CanaryPredictorReady || return 1
  fi
  log "inferenceservice ${namespace}/${name} is Ready"
}

unpack_backup
backup_py verify "${BACKUP_DIR}"
BACKUP_ID="$(backup_py show "${BACKUP_DIR}" id)"
namespace="${namespace:-$(backup_py show "${BACKUP_DIR}" namespace)}"
if [[ ${#model_stores[@]} -gt 0 ]]; then
  store_args=()
  for store in "${model_stores[@]}"; do
    store_args+=(--model-store "${store}")
  done
  backup_py check-models "${BACKUP_DIR}" "${store_args[@]}"
fi

use_kube_context "${context}"
require_cluster
check_apis
check_namespace
[[ "${dry_run}" == true ]] || prepare_namespace

helm_args=(--namespace "${namespace}" --context "${context}")
[[ "${dry_run}" == false ]] || helm_args+=(--dry-run)
backup_py helm "${BACKUP_DIR}" "${helm_args[@]}"

isvcs=()
backup_py objects "${BACKUP_DIR}" --namespace "${namespace}" --out "${WORKDIR}/objects" >"${WORKDIR}/objects.txt"
while read -r file resource name <&3; do
  restore_object "${file}" "${resource}" "${name}"
  [[ "${resource}" != inferenceservices.* ]] || isvcs+=("${name}")
done 3<"${WORKDIR}/objects.txt"

if [[ "${dry_run}" == true ]]; then
  log "dry run: nothing written"
  exit 0
fi
if [[ "${wait_seconds}" -gt 0 ]]; then
  for name in "${isvcs[@]}"; do
    if ! wait_ready "${name}"; then
      show_isvc_diagnostics "${namespace}" "${name}"
      die "inferenceservice ${namespace}/${name} is not Ready after ${wait_seconds}s"
    fi
  done
fi
log "restored backup ${BACKUP_ID} into namespace ${namespace}"
