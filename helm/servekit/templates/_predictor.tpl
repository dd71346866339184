{{/*
The pod part of a predictor spec, shared by the stable predictor and the Standard-mode canary.
Called with (dict "root" $ "image" IMAGE-REFERENCE "storageUri" URI).
KServe builds the canary from the stable spec with the canary's fields on top, but containers[]
is replaced as a whole, so both get the full pod here.
*/}}
{{- define "servekit.predictorPod" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $gpu := $values.gpu -}}
serviceAccountName: {{ include "servekit.serviceAccountName" $root }}
{{- if not $values.serviceAccount.automountServiceAccountToken }}
automountServiceAccountToken: false
{{- end }}
{{- with $values.image.pullSecrets }}
imagePullSecrets:
  {{- range . }}
  - name: {{ . }}
  {{- end }}
{{- end }}
labels:
  {{- include "servekit.predictorSelectorLabels" $root | nindent 2 }}
  {{- with $values.predictor.podLabels }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- $annotations := deepCopy $values.predictor.podAnnotations }}
{{- if $values.istio.peerAuthentication.enabled }}
{{- /* Istio's metrics merging reads where the app serves its metrics from these, then points them at 15020. */}}
{{- $annotations = merge $annotations (dict "prometheus.io/scrape" "true" "prometheus.io/port" "8080" "prometheus.io/path" "/metrics") }}
{{- end }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if include "servekit.renderPodSecurityContext" $root }}
{{- with $values.predictor.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
{{- $nodeSelector := deepCopy $values.predictor.nodeSelector }}
{{- $tolerations := $values.predictor.tolerations }}
{{- if $gpu.enabled }}
{{- $nodeSelector = merge $nodeSelector $gpu.nodeSelector }}
{{- $tolerations = concat $tolerations $gpu.tolerations }}
{{- end }}
{{- with $nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.predictor.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $values.predictor.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: kserve-container
    image: {{ .image }}
    imagePullPolicy: {{ $values.image.pullPolicy }}
    {{- with $values.predictor.extraArgs }}
    args:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    env:
      {{- if .storageUri }}
      # KServe's storage initializer downloads this into /mnt/models before the predictor starts.
      - name: STORAGE_URI
        value: {{ .storageUri | quote }}
      {{- end }}
      - name: PREDICTOR_MODEL_NAME
        value: {{ $values.model.name | quote }}
      - name: PREDICTOR_MODEL_DIR
        value: {{ include "servekit.modelDir" . | quote }}
      {{- $device := $values.predictor.device | default (ternary "cuda" "" $gpu.enabled) }}
      {{- if $device }}
      - name: PREDICTOR_DEVICE
        value: {{ $device | quote }}
      {{- end }}
      - name: PREDICTOR_WORKERS
        value: {{ $values.predictor.workers | quote }}
      - name: PREDICTOR_BATCHING
        value: {{ $values.predictor.batching.enabled | quote }}
      - name: PREDICTOR_MAX_BATCH_SIZE
        value: {{ $values.predictor.batching.maxBatchSize | quote }}
      - name: PREDICTOR_MAX_LATENCY_MS
        value: {{ $values.predictor.batching.maxLatencyMs | quote }}
      - name: PREDICTOR_MAX_QUEUE_SIZE
        value: {{ $values.predictor.batching.maxQueueSize | quote }}
      - name: PREDICTOR_LOG_FORMAT
        value: {{ $values.predictor.logFormat | quote }}
      - name: PREDICTOR_LOG_LEVEL
        value: {{ $values.predictor.logLevel | quote }}
      - name: PREDICTOR_MAX_BODY_BYTES
        value: {{ $values.predictor.maxBodyBytes | int64 | quote }}
      {{- if $values.auth.token.enabled }}
      - name: PREDICTOR_AUTH_TOKEN_FILE
        value: {{ printf "%s/%s" $values.auth.token.mountPath $values.auth.token.secretKey | quote }}
      {{- end }}
      {{- with $values.predictor.extraEnv }}
      {{- toYaml . | nindent 6 }}
      {{- end }}
    ports:
      # Knative accepts one port, named http1 or h2c; KServe's Standard-mode Service maps port 80
      # to the first one and exposes further ports under their own numbers.
      - name: http1
        containerPort: 8080
        protocol: TCP
      {{- if $values.predictor.grpc.expose }}
      - name: grpc
        containerPort: 8081
        protocol: TCP
      {{- end }}
    # Readiness asks for the model: /v2/health/ready is true before the model is loaded.
    readinessProbe:
      httpGet:
        path: /v2/models/{{ $values.model.name }}/ready
        port: 8080
      {{- toYaml $values.predictor.probes.readiness | nindent 6 }}
    livenessProbe:
      httpGet:
        path: /v2/health/live
        port: 8080
      {{- toYaml $values.predictor.probes.liveness | nindent 6 }}
    # The server listens only after the model is loaded; this probe holds liveness off until then.
    startupProbe:
      httpGet:
        path: /v2/health/live
        port: 8080
      {{- toYaml $values.predictor.probes.startup | nindent 6 }}
    {{- $resources := deepCopy $values.predictor.resources }}
    {{- if $gpu.enabled }}
    {{- $limits := deepCopy ($resources.limits | default dict) }}
    {{- $_ := set $limits $gpu.resourceName $gpu.count }}
    {{- $_ = set $resources "limits" $limits }}
    {{- end }}
    resources:
      {{- toYaml $resources | nindent 6 }}
    securityContext:
      {{- toYaml $values.predictor.containerSecurityContext | nindent 6 }}
    volumeMounts:
      {{- include "servekit.tmpVolumeMount" $root | nindent 6 }}
      {{- if $values.auth.token.enabled }}
      # The whole Secret, never a subPath: kubelet rotates it by swapping a symlink in this
      # directory, and the predictor re-reads the file when it changes.
      - name: auth-token
        mountPath: {{ $values.auth.token.mountPath }}
        readOnly: true
      {{- end }}
volumes:
  {{- include "servekit.tmpVolume" $root | nindent 2 }}
  {{- if $values.auth.token.enabled }}
  - name: auth-token
    secret:
      secretName: {{ include "servekit.authSecretName" $root }}
      defaultMode: 0444
  {{- end }}
{{- end -}}
