#!/usr/bin/env bash
# InferenceServices: which predictor Deployments KServe should run, waiting until it runs them
# and reports Ready, and what to show when it does not.
#
# Usage: sourced by hack/lib.sh (with the rest of the library); not run on its own.

# Deployment names KServe (Standard mode) runs for an InferenceService: the stable predictor
# ("<isvc>-predictor", or "<isvc>-<name>-predictor" when spec.predictor.name is set) and one per
# spec.canary[] entry.
isvc_predictor_deployments() {
  local namespace="$1" isvc="$2" stable canaries name
  stable="$(kube -n "${namespace}" get inferenceservice "${isvc}" -o jsonpath='{.spec.predictor.name}')"
  canaries="$(kube -n "${namespace}" get inferenceservice "${isvc}" -o jsonpath='{.spec.canary[*].predictor.name}')"
  if [[ -n "${stable}" ]]; then
    echo "${isvc}-${stable}-predictor"
  else
    echo "${isvc}-predictor"
  fi
  for name in ${canaries}; do
    echo "${isvc}-${name}-predictor"
  done
}

# The predictor Deployments that exist for an InferenceService, sorted.
isvc_current_deployments() {
  local namespace="$1" isvc="$2"
  kube -n "${namespace}" get deployments \
    -l "serving.kserve.io/inferenceservice=${isvc},component=predictor" \
    -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort
}

# True once KServe runs exactly the predictors the spec asks for (the controller has caught up
# with the last change, orphans included).
isvc_deployments_match_spec() {
  local namespace="$1" isvc="$2"
  [[ "$(isvc_predictor_deployments "${namespace}" "${isvc}" | sort)" == "$(isvc_current_deployments "${namespace}" "${isvc}")" ]]
}

# isvc_condition_true NAMESPACE NAME TYPE: KServe reports condition TYPE as True. Not `kubectl wait
# --for=condition`: it also wants status.observedGeneration to equal the object's generation, and in
# Standard mode KServe v0.20.0 writes its Deployment's generation there, so after a change to the
# InferenceService that wait can run until its timeout although the condition is True.
isvc_condition_true() {
  local status
  status="$(kube -n "$1" get inferenceservice "$2" -o "jsonpath={.status.conditions[?(@.type==\"$3\")].status}")"
  [[ "${status}" == "True" ]]
}

# wait_for_isvc NAMESPACE NAME TIMEOUT_SECONDS: Ready (and CanaryPredictorReady with canaries),
# every predictor Deployment rolled out. A Standard-mode InferenceService stays Ready during a
# rolling update, so the condition alone says nothing about the last change.
wait_for_isvc() {
  local namespace="$1" isvc="$2" timeout="$3" deployments
  log "waiting for KServe to reconcile inferenceservice ${namespace}/${isvc}"
  if ! wait_until "${timeout}" "the predictor Deployments of ${isvc}" \
    isvc_deployments_match_spec "${namespace}" "${isvc}"; then
    warn "expected: $(isvc_predictor_deployments "${namespace}" "${isvc}" | tr '\n' ' ')found: $(isvc_current_deployments "${namespace}" "${isvc}" | tr '\n' ' ')"
    show_isvc_diagnostics "${namespace}" "${isvc}"
    return 1
  fi
  mapfile -t deployments < <(isvc_predictor_deployments "${namespace}" "${isvc}")
  if ! wait_for_deployments "${namespace}" "${timeout}s" "${deployments[@]}"; then
    show_isvc_diagnostics "${namespace}" "${isvc}"
    return 1
  fi
  local conditions=(Ready) condition
  [[ ${#deployments[@]} -gt 1 ]] && conditions+=(CanaryPredictorReady)
  for condition in "${conditions[@]}"; do
    log "waiting for inferenceservice ${namespace}/${isvc} to be ${condition}"
    if ! wait_until "${timeout}" "${condition} of inferenceservice ${namespace}/${isvc}" \
      isvc_condition_true "${namespace}" "${isvc}" "${condition}"; then
      show_isvc_diagnostics "${namespace}" "${isvc}"
      return 1
    fi
  done
  log "inferenceservice ${namespace}/${isvc} is Ready ($(printf '%s ' "${deployments[@]}")rolled out)"
}

# What a person needs to see when an InferenceService does not come up. Never fails.
show_isvc_diagnostics() {
  local namespace="$1" isvc="$2" pod
  {
    echo "----- inferenceservice ${namespace}/${isvc}"
    kube -n "${namespace}" get inferenceservice "${isvc}" -o yaml 2>&1 | sed -n '/^status:/,$p'
    echo "----- pods in ${namespace}"
    kube -n "${namespace}" get pods -o wide 2>&1
    echo "----- recent events in ${namespace}"
    kube -n "${namespace}" get events --sort-by=.lastTimestamp 2>&1 | tail -n 25
    for pod in $(kube -n "${namespace}" get pods -l "serving.kserve.io/inferenceservice=${isvc}" -o name 2>/dev/null); do
      echo "----- logs of ${pod}"
      kube -n "${namespace}" logs "${pod}" --all-containers --tail=40 2>&1
    done
    echo "----- KServe controller"
    kube -n kserve logs deployment/kserve-controller-manager --tail=30 2>&1
  } >&2 || true
}
