{{/*
Chart name, overridable with nameOverride.
*/}}
{{- define "servekit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Full name: also the InferenceService name. Truncated to 45 characters because KServe and Knative
derive longer names from it ("<name>-predictor-00001-private", "<name>-<predictor>-predictor")
that must stay DNS labels of at most 63 characters.
*/}}
{{- define "servekit.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
Chart name and version, for the helm.sh/chart label.
*/}}
{{- define "servekit.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Labels of every object.
*/}}
{{- define "servekit.labels" -}}
helm.sh/chart: {{ include "servekit.chart" . }}
{{ include "servekit.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: servekit
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Selector labels: name and instance.
*/}}
{{- define "servekit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "servekit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
Labels that select the predictor pods (stable and canary): KServe copies spec.predictor.labels
onto them. The PodDisruptionBudget, NetworkPolicy and metrics Service select on these.
*/}}
{{- define "servekit.predictorSelectorLabels" -}}
{{ include "servekit.selectorLabels" . }}
app.kubernetes.io/component: predictor
{{- end -}}

{{/*
Annotations of every object, as a YAML map (empty when there are none).
*/}}
{{- define "servekit.annotations" -}}
{{- with .Values.commonAnnotations }}
{{- toYaml . }}
{{- end }}
{{- end -}}

{{/*
ServiceAccount of the predictor pods.
*/}}
{{- define "servekit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "servekit.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/*
Name of the canary controller's Deployment, ServiceAccount and Role.
*/}}
{{- define "servekit.canaryControllerName" -}}
{{- printf "%s-canary-controller" (include "servekit.fullname" .) -}}
{{- end -}}

{{/*
Image reference from (dict "image" IMAGE "default" STABLE "root" $): a digest wins over a tag; the
tag defaults to the appVersion, with "-cuda" for GPU pods. "default" (optional) is another image
map whose fields fill empty ones (the canary falls back to the stable image).
*/}}
{{- define "servekit.image" -}}
{{- $root := .root -}}
{{- $fallback := .default | default dict -}}
{{- $repository := .image.repository | default $fallback.repository -}}
{{- $digest := .image.digest | default $fallback.digest -}}
{{- $tag := .image.tag | default $fallback.tag -}}
{{- if not $tag -}}
{{- $tag = printf "%s%s" $root.Chart.AppVersion (ternary "-cuda" "" $root.Values.gpu.enabled) -}}
{{- end -}}
{{- if $digest -}}
{{- printf "%s@%s" $repository $digest -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
The canary controller's image: its own repository (the Dockerfile's `controller` target), the
chart appVersion when no tag is set, and no `-cuda` variant (it runs no model).
*/}}
{{- define "servekit.canaryControllerImage" -}}
{{- $image := .Values.canaryController.image -}}
{{- if $image.digest -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository ($image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
Name of the Service KServe creates for the stable predictor (port 80 -> 8080).
*/}}
{{- define "servekit.predictorServiceName" -}}
{{- $fullname := include "servekit.fullname" . -}}
{{- if .Values.predictor.name -}}
{{- printf "%s-%s-predictor" $fullname .Values.predictor.name -}}
{{- else -}}
{{- printf "%s-predictor" $fullname -}}
{{- end -}}
{{- end -}}

{{/*
In-cluster URL of the model's v2 inference endpoint.
*/}}
{{- define "servekit.inferUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local/v2/models/%s/infer" (include "servekit.predictorServiceName" .) .Release.Namespace .Values.model.name -}}
{{- end -}}

{{/*
Model directory the predictor reads: KServe's storage initializer fills /mnt/models when a
STORAGE_URI is set, otherwise the model baked into the image is served.
*/}}
{{- define "servekit.modelDir" -}}
{{- if .storageUri -}}
/mnt/models
{{- else -}}
{{- .root.Values.model.bakedDir -}}
{{- end -}}
{{- end -}}

{{/*
Pod security context, where the deployment mode allows one (Knative needs a feature flag).
*/}}
{{- define "servekit.renderPodSecurityContext" -}}
{{- if or (eq .Values.deploymentMode "Standard") .Values.knative.podspecFeatures.securityContext -}}
true
{{- end -}}
{{- end -}}

{{/*
A writable /tmp: the predictor writes nowhere else, the root filesystem is read-only.
*/}}
{{- define "servekit.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.predictor.tmpSizeLimit }}
{{- end -}}

{{- define "servekit.tmpVolumeMount" -}}
- name: tmp
  mountPath: /tmp
{{- end -}}

{{/*
Secret with the predictor's bearer tokens: an existing one, or the one the chart creates.
*/}}
{{- define "servekit.authSecretName" -}}
{{- .Values.auth.token.existingSecret | default (printf "%s-auth" (include "servekit.fullname" .)) -}}
{{- end -}}

{{/*
Where Prometheus scrapes the predictor. Under Istio's STRICT mTLS (istio.peerAuthentication) a
Prometheus outside the mesh cannot reach 8080 in plaintext: it scrapes the sidecar's port 15020
instead, where Istio's metrics merging serves the predictor's /metrics and the proxy's together,
in plaintext (the port is not behind the sidecar's mTLS).
*/}}
{{- define "servekit.metricsPort" -}}
{{- ternary 15020 8080 .Values.istio.peerAuthentication.enabled -}}
{{- end -}}

{{- define "servekit.metricsPath" -}}
{{- ternary "/stats/prometheus" "/metrics" .Values.istio.peerAuthentication.enabled -}}
{{- end -}}
