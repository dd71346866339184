#!/usr/bin/env bash
# The GPU benchmark (python -m tests.bench --gpu, issue 11) on a machine that has Python 3.12 and
# torch with CUDA but neither kserve nor a package index, such as a lent GPU machine: prepare
# the missing pieces here, carry .gpu-bench/ with the checkout, run there.
#
# Usage: hack/gpu-bench.sh prepare | run [--out DIR] [--deadline-s S] [-- BENCH-ARGS...]
#
#   prepare          here, in the project virtualenv: download into .gpu-bench/ (git-ignored) the
#                    Python 3.12 wheels that a predictor worker and the benchmark import, at this
#                    virtualenv's versions, less torch, numpy and pandas (python -m tests.bench.carry),
#                    and Debian's wrk with its libluajit (apt-get download)
#   run              there: install the wheels into /tmp (nothing is fetched), unpack wrk beside
#                    them, check the imports, then run the benchmark with a deadline so that the
#                    whole call ends in about 5 minutes
#     --out DIR        where the JSON, the PNG and the servers' logs (one .tar.gz) go; three
#                      files, so a device call brings them back (default: results/)
#     --deadline-s S   start no configuration after S seconds of benchmark (default 230)
#     -- ARGS          passed on to python -m tests.bench --gpu (e.g. -- --matrix full)
#   -h, --help       show this help
#
# PYTHON names the interpreter: for prepare the project virtualenv's (default .venv/bin/python),
# for run the machine's Python 3.12 with torch (default python3).
set -euo pipefail

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly CARRY="${SERVEKIT_ROOT}/.gpu-bench"
# The lent machine's interpreter (a minor version: pip downloads wheels for it).
readonly TARGET_PYTHON=3.12
# pip matches a wheel's manylinux tag exactly: name every glibc level the machine accepts.
readonly PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
readonly DEBS=(wrk libluajit-5.1-2)
readonly SITE=/tmp/servekit-gpu-bench/site
readonly WRK_ROOT=/tmp/servekit-gpu-bench/wrk
readonly RESULTS=/tmp/servekit-gpu-bench/results

prepare() {
  local python="${PYTHON:-${SERVEKIT_ROOT}/.venv/bin/python}" platform_args=() platform
  [[ -x "${python}" ]] || die "no ${python}: run 'make .venv/.dev-installed' first (the list comes from that virtualenv)"
  require_tools apt-get
  for platform in "${PLATFORMS[@]}"; do
    platform_args+=(--platform "${platform}")
  done
  rm -rf "${CARRY}"
  mkdir -p "${CARRY}/wheels" "${CARRY}/debs"
  log "listing what a predictor worker and the GPU benchmark import"
  (cd "${SERVEKIT_ROOT}" && "${python}" -m tests.bench.carry) >"${CARRY}/requirements.txt"
  log "downloading $(wc -l <"${CARRY}/requirements.txt") wheels for Python ${TARGET_PYTHON}"
  "${python}" -m pip download --quiet --no-deps --only-binary=:all: \
    --python-version "${TARGET_PYTHON}" --implementation cp "${platform_args[@]}" \
    -d "${CARRY}/wheels" -r "${CARRY}/requirements.txt"
  log "downloading Debian's ${DEBS[*]}"
  (cd "${CARRY}/debs" && apt-get download -qq "${DEBS[@]}") ||
    die "apt-get download failed; 'apt-get update' first if it could not find the packages"
  log "ready: $(du -sh "${CARRY}" | cut -f1) in ${CARRY}; carry it with the checkout"
}

# wrk from the carried .debs, unpacked under /tmp (never over /); the Python load generator
# takes over (and reads lower) where it does not run.
unpack_wrk() {
  local deb
  if command -v wrk >/dev/null 2>&1; then
    return
  fi
  rm -rf "${WRK_ROOT}"
  for deb in "${CARRY}"/debs/*.deb; do
    dpkg-deb -x "${deb}" "${WRK_ROOT}"
  done
  export LD_LIBRARY_PATH="${WRK_ROOT}/usr/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}"
  # wrk --version exits 1 even when it works: judge it by what it prints.
  local version
  version="$("${WRK_ROOT}/usr/bin/wrk" --version 2>&1 | head -n 1 || true)"
  if [[ "${version}" == "wrk "* ]]; then
    export PATH="${WRK_ROOT}/usr/bin:${PATH}"
    log "wrk: ${version}"
  else
    warn "the carried wrk does not run here (${version}); the benchmark uses its Python load generator"
  fi
}

run_bench() {
  local python="${PYTHON:-python3}" out="${SERVEKIT_ROOT}/results" deadline=230 bench_args=()
  while [[ $# -gt 0 ]]; do
    case "$1" in
      --out) need_value "$@"; out="$2"; shift 2 ;;
      --deadline-s) need_value "$@"; deadline="$2"; shift 2 ;;
      --) shift; bench_args=("$@"); break ;;
      *) usage_error "unknown option for run: $1" ;;
    esac
  done
  [[ -d "${CARRY}/wheels" ]] || die "no ${CARRY}/wheels: run 'hack/gpu-bench.sh prepare' where a package index can be reached, and carry .gpu-bench"
  require_tools "${python}" dpkg-deb
  log "installing $(find "${CARRY}/wheels" -name '*.whl' | wc -l) wheels into ${SITE} for $("${python}" --version 2>&1)"
  "${python}" -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target "${SITE}" "${CARRY}"/wheels/*.whl
  export PYTHONPATH="${SITE}${PYTHONPATH:+:${PYTHONPATH}}"
  unpack_wrk
  cd "${SERVEKIT_ROOT}"
  "${python}" -c 'import sys; sys.argv = sys.argv[:1]; import torch, kserve, predictor.workers.worker_server, tests.bench.gpu' ||
    die "the carried wheels do not cover every import: compare 'python -m tests.bench.carry' with the machine's packages"
  log "torch $("${python}" -c 'import torch; print(torch.__version__, "CUDA", torch.cuda.is_available())')"
  local status=0
  rm -rf "${RESULTS}"
  "${python}" -m tests.bench --gpu --results-dir "${RESULTS}" --deadline-s "${deadline}" "${bench_args[@]}" || status=$?
  collect_results "${out}"
  return "${status}"
}

# The JSON, the PNG and one archive of the logs: the models the run built stay behind.
collect_results() {
  local out="$1" work
  mkdir -p "${out}"
  cp "${RESULTS}"/gpu-bench-*.json "${RESULTS}"/gpu-bench-*.png "${out}/" 2>/dev/null || true
  for work in "${RESULTS}"/gpu-bench-*/; do
    [[ -d "${work}logs" ]] && tar -czf "${out}/$(basename "${work}")-logs.tar.gz" -C "${work}" logs
  done
  log "results in ${out}: $(cd "${out}" && ls -m)"
}

case "${1:-}" in
  prepare) shift; [[ $# -eq 0 ]] || usage_error "prepare takes no arguments"; prepare ;;
  run) shift; run_bench "$@" ;;
  -h | --help) usage ;;
  "") usage_error "say prepare or run" ;;
  -*) usage_error "unknown option: $1" ;;
  *) usage_error "unknown command: $1 (prepare or run)" ;;
esac
