#!/usr/bin/env bash
# Check an exported image the way the node will run it: import the archive into a throwaway
# containerd (hack/image/containerd-sandbox.sh) and run it with runc, read-only root filesystem
# and a tmpfs on /tmp, as the chart's pods do. Prints one "ok:" line per check; exits 1 on the
# first failure, with what was expected and what came.
#
# Usage: hack/image/verify.sh [--fresh] IMAGE FILE.tar
#
#   --fresh      start from an empty containerd root (the root is kept between checks, so a
#                warm check does not unpack the image again; see containerd-sandbox.sh)
#   IMAGE        predictor | canary-controller | storage-initializer | pause
#   FILE.tar     the archive hack/image/export.sh wrote for it
#   -h, --help   show this help
#
# Checks: predictor: the user is 65532:65532, `python -m predictor` serves /v2/health/ready with
# the root read-only, writing to / fails and to /tmp works, `import predictor` works.
# canary-controller: the user is 65532:65532, the entrypoint is servekit-canary, `servekit-canary
# controller --help` answers with the root read-only, and KServe and scikit-learn are absent.
# storage-initializer: the user is 1000, a bad command line exits 2 with the usage, a bad URI
# exits 1 naming it, s3:// goes through boto3 to the endpoint in AWS_ENDPOINT_URL, a local
# folder is copied (exit 0).
# pause: the user is 65535, it keeps running, and SIGTERM ends it with status 0.
# Needs root, containerd, ctr and runc (sudo hack/image/install-tools.sh).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
# shellcheck source-path=SCRIPTDIR source=containerd-sandbox.sh
source "$(dirname "${BASH_SOURCE[0]}")/containerd-sandbox.sh"

readonly -A REFS=(
  [predictor]="servekit/predictor:dev"
  [canary-controller]="servekit/canary-controller:dev"
  [storage-initializer]="servekit/storage-initializer:dev"
  [pause]="localhost/servekit/pause:3.10"
)
readonly TMPFS_ON_TMP="type=tmpfs,src=tmpfs,dst=/tmp,options=nosuid:nodev:mode=1777"

fresh=false
positional=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --fresh) fresh=true; shift ;;
    -h | --help) usage; exit 0 ;;
    -*) usage_error "unknown option: $1" ;;
    *) positional+=("$1"); shift ;;
  esac
done
[[ ${#positional[@]} -eq 2 ]] || usage_error "expected IMAGE and FILE.tar, got ${#positional[@]} argument(s): ${positional[*]:-none}"
image="${positional[0]}"
archive="${positional[1]}"
[[ -n "${REFS[${image}]:-}" ]] || usage_error "unknown image '${image}': expected predictor, canary-controller, storage-initializer or pause"
[[ -f "${archive}" ]] || usage_error "no archive at '${archive}': write it with hack/image/export.sh ${REFS[${image}]} ${archive}"
[[ "$(id -u)" -eq 0 ]] || die "running containers with containerd needs root"

ok() {
  printf 'ok: %s\n' "$*"
}

# expect_equal WHAT EXPECTED ACTUAL
expect_equal() {
  [[ "$2" == "$3" ]] || die "$1: expected '$2', got '$3'"
  ok "$1 is '$3'"
}

# archive_config FILE FIELD: a field of the image config inside a docker-archive (a list as JSON).
archive_config() {
  python3 - "$1" "$2" <<'PY'
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as archive:
    manifest = json.load(archive.extractfile("manifest.json"))
    config = json.load(archive.extractfile(manifest[0]["Config"]))
value = config.get("config", {}).get(sys.argv[2], "")
print(value if isinstance(value, str) else json.dumps(value))
PY
}

# archive_user FILE: the User of the image config inside a docker-archive.
archive_user() {
  archive_config "$1" User
}

# run_once [CTR_RUN_FLAGS...] NAME ID [ARGS...]: run the image to completion (read-only root,
# tmpfs /tmp); sets RUN_STATUS and RUN_OUTPUT (stdout and stderr).
run_once() {
  RUN_STATUS=0
  RUN_OUTPUT="$(sandbox_ctr run --rm --read-only --mount "${TMPFS_ON_TMP}" "$@" 2>&1)" || RUN_STATUS=$?
}

# in_task ID COMMAND...: run COMMAND in the running task ID, as the task's user.
EXEC_COUNT=0
in_task() {
  local id="$1"
  shift
  EXEC_COUNT=$((EXEC_COUNT + 1))
  sandbox_ctr tasks exec --exec-id "check-${EXEC_COUNT}" "${id}" "$@"
}

verify_predictor() {
  local name="$1" id="predictor-check" deadline
  expect_equal "the image's user" "65532:65532" "$(archive_user "${archive}")"
  sandbox_ctr run --detach --read-only --mount "${TMPFS_ON_TMP}" \
    --log-uri "file://${SANDBOX_DIR}/${id}.log" "${name}" "${id}" >/dev/null
  deadline=$((SECONDS + 90))
  until in_task "${id}" python -c \
    "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/v2/health/ready', timeout=2)" \
    >/dev/null 2>&1; do
    if [[ "$(task_status "${id}")" != RUNNING || "${SECONDS}" -ge "${deadline}" ]]; then
      tail -n 30 "${SANDBOX_DIR}/${id}.log" >&2 || true
      die "the predictor did not answer /v2/health/ready within 90 s (task: $(task_status "${id}"))"
    fi
    sleep 1
  done
  ok "python -m predictor serves /v2/health/ready with a read-only root filesystem"
  expect_equal "id -u in the container" 65532 "$(in_task "${id}" id -u)"
  expect_equal "id -g in the container" 65532 "$(in_task "${id}" id -g)"
  if in_task "${id}" sh -c 'echo x > /probe' >/dev/null 2>&1; then
    die "writing to / worked: the root filesystem is not read-only"
  fi
  ok "writing to / fails"
  in_task "${id}" sh -c 'echo x > /tmp/probe && test -s /tmp/probe' || die "writing to /tmp failed"
  ok "writing to /tmp works"
  in_task "${id}" python -c 'import predictor' || die "'python -c \"import predictor\"' failed"
  ok "python -c 'import predictor' works"
  sandbox_ctr tasks kill --signal SIGTERM "${id}"
  wait_for_task_stopped "${id}" 30 || die "the predictor did not stop within 30 s of SIGTERM"
  ok "the predictor stops on SIGTERM"
}

verify_canary_controller() {
  local name="$1" module
  expect_equal "the image's user" "65532:65532" "$(archive_user "${archive}")"
  expect_equal "the image's entrypoint" '["servekit-canary"]' "$(archive_config "${archive}" Entrypoint)"
  # ctr run's ARGS replace the whole command (a pod's `args` keep the ENTRYPOINT): name it.
  run_once "${name}" controller-help servekit-canary controller --help
  expect_equal "exit status of 'servekit-canary controller --help'" 0 "${RUN_STATUS}"
  [[ "${RUN_OUTPUT}" == *"--prometheus-url"* ]] ||
    die "'servekit-canary controller --help' does not list --prometheus-url; the output was: ${RUN_OUTPUT}"
  ok "servekit-canary controller --help answers with a read-only root filesystem"
  run_once "${name}" controller-id id -u
  expect_equal "id -u in the container" 65532 "${RUN_OUTPUT}"
  # The point of a separate image: the serving stack stays out of it.
  for module in kserve sklearn torch; do
    run_once "${name}" "controller-no-${module}" python -c "import ${module}"
    [[ "${RUN_STATUS}" -ne 0 && "${RUN_OUTPUT}" == *"No module named '${module}'"* ]] ||
      die "'import ${module}' in the controller image: expected ModuleNotFoundError, got status ${RUN_STATUS}: ${RUN_OUTPUT}"
    ok "the controller image has no ${module}"
  done
}

# ctr run's ARGS replace the image's whole command (a pod's `args` keep its ENTRYPOINT), so runs
# with arguments name the entrypoint KServe's pods run.
readonly INITIALIZER=/storage-initializer/scripts/initializer-entrypoint

verify_storage_initializer() {
  local name="$1"
  expect_equal "the image's user" "1000:1000" "$(archive_user "${archive}")"
  run_once "${name}" si-usage
  expect_equal "exit status without arguments" 2 "${RUN_STATUS}"
  [[ "${RUN_OUTPUT}" == *"usage: initializer-entrypoint SRC_URI DEST_PATH"* ]] ||
    die "no usage line without arguments; the output was: ${RUN_OUTPUT}"
  ok "without arguments it prints the usage"
  run_once "${name}" si-bad-uri "${INITIALIZER}" nosuch://bucket/model /tmp/models
  expect_equal "exit status for a bad URI" 1 "${RUN_STATUS}"
  [[ "${RUN_OUTPUT}" == *"cannot download nosuch://bucket/model"* ]] ||
    die "the error for a bad URI does not name it; the output was: ${RUN_OUTPUT}"
  ok "a bad URI fails naming it: $(grep -m1 'cannot download' <<<"${RUN_OUTPUT}")"
  # Port 9 on the container's own loopback: nothing listens, so boto3 must fail to connect to
  # exactly that endpoint, which shows s3:// goes through boto3 to AWS_ENDPOINT_URL.
  run_once --env AWS_ENDPOINT_URL=http://127.0.0.1:9 --env AWS_ACCESS_KEY_ID=servekit \
    --env AWS_SECRET_ACCESS_KEY=servekit-secret --env S3_USE_HTTPS=0 --env AWS_MAX_ATTEMPTS=1 \
    "${name}" si-s3 "${INITIALIZER}" s3://models/iris /tmp/models
  expect_equal "exit status for an unreachable S3 endpoint" 1 "${RUN_STATUS}"
  [[ "${RUN_OUTPUT}" == *"http://127.0.0.1:9"* ]] ||
    die "the S3 error does not name the endpoint http://127.0.0.1:9; the output was: ${RUN_OUTPUT}"
  ok "s3:// goes to AWS_ENDPOINT_URL through boto3"
  # The success path, as the image's user on a read-only root: a local folder (the entrypoint's
  # own) copied to a fresh destination under /tmp.
  run_once "${name}" si-local "${INITIALIZER}" /storage-initializer/scripts /tmp/models/local
  expect_equal "exit status for a local folder" 0 "${RUN_STATUS}"
  [[ "${RUN_OUTPUT}" == *"Successfully copied /storage-initializer/scripts to /tmp/models/local"* ]] ||
    die "no 'Successfully copied' for a local folder; the output was: ${RUN_OUTPUT}"
  ok "a local folder is downloaded (copied) as the image's user"
}

verify_pause() {
  local name="$1" id="pause-check" status=0
  expect_equal "the image's user" "65535:65535" "$(archive_user "${archive}")"
  sandbox_ctr run --detach --read-only "${name}" "${id}" >/dev/null
  sleep 1
  expect_equal "the pause task's state after 1 s" RUNNING "$(task_status "${id}")"
  sandbox_ctr tasks kill --signal SIGTERM "${id}"
  wait_for_task_stopped "${id}" 10 || die "pause did not stop within 10 s of SIGTERM"
  sandbox_ctr tasks delete "${id}" >/dev/null 2>&1 || status=$?
  expect_equal "pause's exit status after SIGTERM" 0 "${status}"
}

SANDBOX_FRESH="${fresh}"
trap stop_throwaway_containerd EXIT
start_throwaway_containerd
name="$(import_archive "${archive}" "${REFS[${image}]}")"
[[ -n "${name}" ]] || die "after importing ${archive}, containerd lists no image named like ${REFS[${image}]}: $(sandbox_ctr images ls -q | tr '\n' ' ')"
ok "imported ${archive} as ${name} (${SECONDS}s after the start)"
case "${image}" in
  predictor) verify_predictor "${name}" ;;
  canary-controller) verify_canary_controller "${name}" ;;
  storage-initializer) verify_storage_initializer "${name}" ;;
  pause) verify_pause "${name}" ;;
esac
