{{/*
Checks across values that values.schema.json cannot express: combinations that KServe or Knative
would reject, or would silently ignore. All problems are reported at once.
*/}}
{{- define "servekit.validate" -}}
{{- $messages := list -}}
{{- $messages = concat $messages (include "servekit.validate.name" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.autoscaling" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.modeFields" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.gpu" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.canary" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.policy" . | fromYamlArray) -}}
{{- $messages = concat $messages (include "servekit.validate.access" . | fromYamlArray) -}}
{{- if $messages -}}
{{- fail (printf "\n\nVALUES VALIDATION:\n- %s" (join "\n- " $messages)) -}}
{{- end -}}
{{- end -}}

{{- define "servekit.validate.name" -}}
{{- $name := include "servekit.fullname" . -}}
{{- if not (regexMatch "^[a-z]([-a-z0-9]*[a-z0-9])?$" $name) }}
- {{ printf "InferenceService name %q (from the release name or fullnameOverride) must be a DNS-1035 label: lower-case letters, digits and '-', starting with a letter" $name | quote }}
{{- end }}
{{- end -}}

{{- define "servekit.validate.autoscaling" -}}
{{- $as := .Values.autoscaling -}}
{{- $mode := .Values.deploymentMode -}}
{{- $class := include "servekit.autoscaling.class" . -}}
{{- $metric := include "servekit.autoscaling.metric" . -}}
{{- $target := include "servekit.autoscaling.target" . -}}
{{- if and (eq $mode "Standard") (eq $class "kpa") }}
- "autoscaling.class=kpa (the Knative Pod Autoscaler) needs deploymentMode=Knative; Standard mode uses hpa, keda, external or none"
{{- end }}
{{- if and (eq $mode "Knative") (ne $class "kpa") }}
- {{ printf "autoscaling.class=%s does not apply in Knative mode, which scales with the Knative Pod Autoscaler: set autoscaling.class=kpa or leave it empty" $class | quote }}
{{- end }}
{{- $allowed := dict "hpa" (list "cpu" "memory") "keda" (list "rps" "concurrency" "cpu" "memory") "kpa" (list "concurrency" "rps") -}}
{{- $metrics := get $allowed $class -}}
{{- if and $metrics (not (has $metric $metrics)) }}
{{- if and (eq $class "hpa") (has $metric (list "rps" "concurrency")) }}
- {{ printf "autoscaling.metric=%s needs KEDA in Standard mode (the HPA scales on cpu or memory only): set autoscaling.class=keda" $metric | quote }}
{{- else }}
- {{ printf "autoscaling.metric=%s is not supported by autoscaling.class=%s: use one of %s" $metric $class (join ", " $metrics) | quote }}
{{- end }}
{{- end }}
{{- if and (has $metric (list "cpu" "memory")) (gt (int $target) 100) }}
- {{ printf "autoscaling.target=%v is a utilization percentage for metric %s: use 1-100" $target $metric | quote }}
{{- end }}
{{- if and (eq (int $as.minReplicas) 0) (not (has $class (list "kpa" "keda"))) }}
- {{ printf "autoscaling.minReplicas=0 (scale to zero) needs deploymentMode=Knative or autoscaling.class=keda, not %s" $class | quote }}
{{- end }}
{{- if lt (int $as.maxReplicas) (int $as.minReplicas) }}
- {{ printf "autoscaling.maxReplicas=%v must not be below autoscaling.minReplicas=%v" $as.maxReplicas $as.minReplicas | quote }}
{{- end }}
{{- if and $as.behavior (not (has $class (list "hpa" "keda"))) }}
- {{ printf "autoscaling.behavior configures the HPA/KEDA autoscaler and is ignored with autoscaling.class=%s: remove it" $class | quote }}
{{- end }}
{{- if and (has $metric (list "rps" "concurrency")) (eq $class "keda") (not $as.keda.prometheusUrl) }}
- "autoscaling.keda.prometheusUrl is required to scale on rps or concurrency with KEDA"
{{- end }}
{{- if and $as.knative.containerConcurrency (ne $mode "Knative") }}
- "autoscaling.knative.containerConcurrency only works in Knative mode (Knative's queue-proxy enforces it): remove it or set deploymentMode=Knative"
{{- end }}
{{- end -}}

{{/*
Pod fields that one deployment mode does not support.
*/}}
{{- define "servekit.validate.modeFields" -}}
{{- $p := .Values.predictor -}}
{{- if eq .Values.deploymentMode "Knative" }}
{{- if $p.deploymentStrategy }}
- "predictor.deploymentStrategy is for Standard mode only (KServe rejects it in Knative mode)"
{{- end }}
{{- if $p.grpc.expose }}
- "predictor.grpc.expose needs Standard mode: Knative allows a single port per pod (gRPC still listens on 8081 inside the pod)"
{{- end }}
{{- if $p.name }}
- "predictor.name is for Standard-mode canaries: remove it in Knative mode"
{{- end }}
{{- $features := .Values.knative.podspecFeatures -}}
{{- $gpu := .Values.gpu -}}
{{- if and (or $p.nodeSelector (and $gpu.enabled $gpu.nodeSelector)) (not $features.nodeSelector) }}
- "a nodeSelector (predictor.nodeSelector or gpu.nodeSelector) in Knative mode needs the kubernetes.podspec-nodeselector flag in Knative's config-features; enable it and set knative.podspecFeatures.nodeSelector=true"
{{- end }}
{{- if and (or $p.tolerations (and $gpu.enabled $gpu.tolerations)) (not $features.tolerations) }}
- "tolerations (predictor.tolerations or gpu.tolerations) in Knative mode need the kubernetes.podspec-tolerations flag in Knative's config-features; enable it and set knative.podspecFeatures.tolerations=true"
{{- end }}
{{- if and $p.affinity (not $features.affinity) }}
- "predictor.affinity in Knative mode needs the kubernetes.podspec-affinity flag in Knative's config-features; enable it and set knative.podspecFeatures.affinity=true"
{{- end }}
{{- if and $p.topologySpreadConstraints (not $features.topologySpreadConstraints) }}
- "predictor.topologySpreadConstraints in Knative mode need the kubernetes.podspec-topologyspreadconstraints flag in Knative's config-features; enable it and set knative.podspecFeatures.topologySpreadConstraints=true"
{{- end }}
{{- end }}
{{- end -}}

{{- define "servekit.validate.gpu" -}}
{{- $gpu := .Values.gpu -}}
{{- $device := .Values.predictor.device -}}
{{- $resources := .Values.predictor.resources -}}
{{- if and $gpu.enabled (eq $device "cpu") }}
- "gpu.enabled=true with predictor.device=cpu reserves a GPU the predictor never uses: set predictor.device to cuda (or leave it empty)"
{{- end }}
{{- if and (hasPrefix "cuda" $device) (not $gpu.enabled) }}
- {{ printf "predictor.device=%s needs a GPU: set gpu.enabled=true" $device | quote }}
{{- end }}
{{- if hasKey ($resources.requests | default dict) $gpu.resourceName }}
- {{ printf "predictor.resources.requests.%s: GPUs go in limits only (Kubernetes sets the request equal to the limit); use gpu.enabled and gpu.count" $gpu.resourceName | quote }}
{{- end }}
{{- if and (hasKey ($resources.limits | default dict) $gpu.resourceName) }}
- {{ printf "predictor.resources.limits.%s: use gpu.enabled and gpu.count, so the GPU node selector, tolerations and CUDA image come with it" $gpu.resourceName | quote }}
{{- end }}
{{- end -}}

{{- define "servekit.validate.canary" -}}
{{- $mode := .Values.deploymentMode -}}
{{- $kn := .Values.canary.knative -}}
{{- $std := .Values.canary.standard -}}
{{- if and $kn.enabled (eq $mode "Standard") }}
- "canary.knative (spec.predictor.canaryTrafficPercent) is silently ignored by KServe in Standard mode: use canary.standard, or deploymentMode=Knative"
{{- end }}
{{- if and $std.enabled (eq $mode "Knative") }}
- "canary.standard (spec.canary[]) is only supported in Standard mode: use canary.knative in Knative mode"
{{- end }}
{{- if and $kn.enabled $std.enabled }}
- "enable one of canary.knative and canary.standard, not both"
{{- end }}
{{- if and $std.enabled (eq $mode "Standard") }}
{{- if not .Values.predictor.name }}
- "canary.standard needs predictor.name: KServe names the stable and canary predictors, and promotion sets spec.predictor.name to the canary's"
{{- else if eq .Values.predictor.name $std.name }}
- {{ printf "canary.standard.name=%s must differ from predictor.name" $std.name | quote }}
{{- end }}
{{- if not .Values.model.storageUri }}
- "canary.standard needs model.storageUri: KServe requires the stable predictor of a canary rollout to load its model from storage (STORAGE_URI), not from the image"
{{- end }}
{{- if gt (int $std.replicas) (int .Values.autoscaling.minReplicas) }}
- {{ printf "canary.standard.replicas=%v must not exceed autoscaling.minReplicas=%v (a KServe rule)" $std.replicas .Values.autoscaling.minReplicas | quote }}
{{- end }}
{{- $stableImage := include "servekit.image" (dict "image" .Values.image "root" .) -}}
{{- $canaryImage := include "servekit.image" (dict "image" $std.image "default" .Values.image "root" .) -}}
{{- $canaryUri := $std.storageUri | default .Values.model.storageUri -}}
{{- if and (eq $stableImage $canaryImage) (eq $canaryUri .Values.model.storageUri) }}
- "canary.standard runs the same image and model as the stable predictor: set canary.standard.storageUri or canary.standard.image"
{{- end }}
{{- end }}
{{- if and .Values.canaryController.enabled (eq .Values.canaryController.watch "release") (not .Values.canaryAnalysis.enabled) }}
- "canaryController.enabled runs a controller for this release's CanaryAnalysis, but canaryAnalysis.enabled is false: enable it"
{{- end }}
{{- if and .Values.canaryAnalysis.enabled (not .Values.metrics.serviceMonitor.enabled) (not .Values.canaryAnalysis.spec.canarySelector) }}
- "canaryAnalysis tells the canary from the stable predictor by the pod labels the chart's ServiceMonitor copies onto the series: enable metrics.serviceMonitor, or set canaryAnalysis.spec.canarySelector to match how your Prometheus labels them"
{{- end }}
{{- if and .Values.metrics.prometheusRule.enabled (not .Values.metrics.serviceMonitor.enabled) }}
- "metrics.prometheusRule selects the predictor's series by the namespace and inferenceservice labels the chart's ServiceMonitor puts on them: enable metrics.serviceMonitor"
{{- end }}
{{- if and .Values.canaryAnalysis.enabled (eq .Values.deploymentMode "Standard") (not .Values.predictor.name) }}
- "canaryAnalysis in Standard mode needs predictor.name: KServe names each predictor's pods after it, and promotion sets spec.predictor.name to the canary's"
{{- end }}
{{- end -}}

{{- define "servekit.validate.policy" -}}
{{- range .Values.predictor.extraEnv }}
{{- if eq .name "PYTHONPATH" }}
- "predictor.extraEnv: KServe's admission webhook rejects PYTHONPATH on InferenceService containers"
{{- end }}
{{- end }}
{{- $pdb := .Values.pdb -}}
{{- if $pdb.enabled }}
{{- $hasMin := and (not (kindIs "invalid" $pdb.minAvailable)) (ne (toString $pdb.minAvailable) "") -}}
{{- $hasMax := and (not (kindIs "invalid" $pdb.maxUnavailable)) (ne (toString $pdb.maxUnavailable) "") -}}
{{- if and $hasMin $hasMax }}
- "pdb: set either pdb.minAvailable or pdb.maxUnavailable, not both"
{{- else if not (or $hasMin $hasMax) }}
- "pdb: set pdb.minAvailable or pdb.maxUnavailable"
{{- end }}
{{- end }}
{{- end -}}

{{/*
Authentication and Istio policies that would lock every client out, or silently check nothing.
*/}}
{{- define "servekit.validate.access" -}}
{{- $token := .Values.auth.token -}}
{{- if and $token.enabled (not $token.existingSecret) (not (trim $token.value)) }}
- "auth.token.enabled needs the tokens: set auth.token.existingSecret to a Secret you created, or auth.token.value"
{{- end }}
{{- if and $token.existingSecret $token.value }}
- "set auth.token.existingSecret or auth.token.value, not both: the chart does not write into an existing Secret"
{{- end }}
{{- $istio := .Values.istio -}}
{{- $policy := $istio.authorizationPolicy -}}
{{- $jwt := $istio.requestAuthentication -}}
{{- if and $policy.enabled (not (or $policy.namespaces $policy.principals $policy.requestPrincipals $policy.claims)) }}
- "istio.authorizationPolicy.enabled allows only health, readiness and /metrics until you name who may call: set namespaces, principals, requestPrincipals or claims"
{{- end }}
{{- if and $policy.enabled (or $policy.requestPrincipals $policy.claims) (not $jwt.enabled) }}
- "istio.authorizationPolicy.requestPrincipals and claims match validated JWTs only: enable istio.requestAuthentication with jwtRules"
{{- end }}
{{- if and $token.enabled $jwt.enabled }}
- "auth.token and istio.requestAuthentication both read the Authorization header (a static token is not a JWT): use one of them"
{{- end }}
{{- if and $jwt.enabled (not $jwt.jwtRules) }}
- "istio.requestAuthentication.enabled needs istio.requestAuthentication.jwtRules (issuer and jwksUri or jwks)"
{{- end }}
{{- end -}}
