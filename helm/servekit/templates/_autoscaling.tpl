{{/*
Scaling fields of spec.predictor for the deployment mode and autoscaler class.
Standard mode: HPA (cpu/memory) or KEDA (Prometheus queries for rps/concurrency) through
spec.predictor.autoScaling; `external` and `none` only set the replica count.
Knative mode: the Knative Pod Autoscaler through scaleMetric/scaleTarget.
*/}}
{{- define "servekit.autoscaling" -}}
{{- $as := .Values.autoscaling -}}
{{- $class := include "servekit.autoscaling.class" . -}}
{{- $metric := include "servekit.autoscaling.metric" . -}}
{{- $target := include "servekit.autoscaling.target" . -}}
minReplicas: {{ $as.minReplicas }}
{{- if eq .Values.deploymentMode "Knative" }}
maxReplicas: {{ $as.maxReplicas }}
scaleMetric: {{ $metric }}
scaleTarget: {{ $target }}
{{- with $as.knative.containerConcurrency }}
containerConcurrency: {{ . }}
{{- end }}
{{- else if has $class (list "hpa" "keda") }}
maxReplicas: {{ $as.maxReplicas }}
autoScaling:
  metrics:
    {{- if has $metric (list "cpu" "memory") }}
    - type: Resource
      resource:
        name: {{ $metric }}
        target:
          type: Utilization
          averageUtilization: {{ $target }}
    {{- else }}
    # KEDA's Prometheus scaler: replicas = query result / value.
    - type: External
      external:
        metric:
          backend: prometheus
          serverAddress: {{ $as.keda.prometheusUrl }}
          query: {{ include "servekit.kedaQuery" . | quote }}
        target:
          type: Value
          value: {{ $target | quote }}
    {{- end }}
  {{- with $as.behavior }}
  behavior:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
PromQL for KEDA: requests per second, or requests waiting in the batcher (a concurrency proxy),
summed over this release's predictor pods: the inferenceservice label is the one the chart's
ServiceMonitor copies from KServe's pod label, so two releases serving the same model in one
namespace do not scale on each other's traffic.
*/}}
{{- define "servekit.kedaQuery" -}}
{{- $as := .Values.autoscaling -}}
{{- if $as.keda.query -}}
{{- $as.keda.query -}}
{{- else -}}
{{- $selector := printf "namespace=%q,inferenceservice=%q,model=%q" .Release.Namespace (include "servekit.fullname" .) .Values.model.name -}}
{{- if eq (include "servekit.autoscaling.metric" .) "rps" -}}
{{- printf "sum(rate(servekit_requests_total{%s}[1m]))" $selector -}}
{{- else -}}
{{- printf "sum(servekit_queue_depth{%s})" $selector -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
The autoscaler class, metric and target, with the deployment mode's defaults filled in.
*/}}
{{- define "servekit.autoscaling.class" -}}
{{- .Values.autoscaling.class | default (ternary "kpa" "hpa" (eq .Values.deploymentMode "Knative")) -}}
{{- end -}}

{{- define "servekit.autoscaling.metric" -}}
{{- $defaults := dict "hpa" "cpu" "keda" "rps" "kpa" "concurrency" -}}
{{- .Values.autoscaling.metric | default (get $defaults (include "servekit.autoscaling.class" .)) -}}
{{- end -}}

{{- define "servekit.autoscaling.target" -}}
{{- $defaults := dict "cpu" 80 "memory" 80 "rps" 50 "concurrency" 16 -}}
{{- .Values.autoscaling.target | default (get $defaults (include "servekit.autoscaling.metric" .)) -}}
{{- end -}}
