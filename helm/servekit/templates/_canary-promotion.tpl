{{/*
Job spec of the canary promotion tool (`servekit-canary watch` from the predictor image).
*/}}
{{- define "servekit.canaryJobSpec" -}}
{{- $promotion := .Values.canaryPromotion -}}
backoffLimit: 1
activeDeadlineSeconds: {{ $promotion.activeDeadlineSeconds }}
ttlSecondsAfterFinished: {{ $promotion.ttlSecondsAfterFinished }}
template:
  metadata:
    labels:
      {{- include "servekit.selectorLabels" . | nindent 6 }}
      app.kubernetes.io/component: canary-promotion
  spec:
    serviceAccountName: {{ include "servekit.canaryServiceAccountName" . }}
    restartPolicy: Never
    {{- with .Values.image.pullSecrets }}
    imagePullSecrets:
      {{- range . }}
      - name: {{ . }}
      {{- end }}
    {{- end }}
    securityContext:
      {{- toYaml .Values.predictor.podSecurityContext | nindent 6 }}
    containers:
      - name: canary
        image: {{ include "servekit.image" (dict "image" .Values.image "root" .) }}
        imagePullPolicy: {{ .Values.image.pullPolicy }}
        command: ["servekit-canary"]
        args:
          - watch
          - --namespace
          - {{ .Release.Namespace }}
          - --isvc
          - {{ include "servekit.fullname" . }}
          - --prometheus-url
          - {{ $promotion.prometheusUrl }}
          {{- with $promotion.extraArgs }}
          {{- toYaml . | nindent 10 }}
          {{- end }}
        resources:
          {{- toYaml $promotion.resources | nindent 10 }}
        securityContext:
          {{- toYaml .Values.predictor.containerSecurityContext | nindent 10 }}
        volumeMounts:
          {{- include "servekit.tmpVolumeMount" . | nindent 10 }}
    volumes:
      {{- include "servekit.tmpVolume" . | nindent 6 }}
{{- end -}}
