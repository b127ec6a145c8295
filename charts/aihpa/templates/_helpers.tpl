{{/* Names, labels and shared pieces of the aihpa chart. */}}

{{- define "aihpa.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The prefix of every object name: the release name, with the chart name unless the release name holds it. */}}
{{- define "aihpa.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "aihpa.controller.fullname" -}}{{ include "aihpa.fullname" . }}-controller{{- end }}
{{- define "aihpa.webhook.fullname" -}}{{ include "aihpa.fullname" . }}-webhook{{- end }}
{{- define "aihpa.certs.fullname" -}}{{ include "aihpa.fullname" . }}-certs{{- end }}
{{- define "aihpa.webhook.secretName" -}}{{ default (printf "%s-tls" (include "aihpa.webhook.fullname" .)) .Values.certs.secretName }}{{- end }}

{{- define "aihpa.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "aihpa.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component: call with (dict "root" $ "component" "controller"). */}}
{{- define "aihpa.selectorLabels" -}}
app.kubernetes.io/name: {{ include "aihpa.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "aihpa.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The default affinity: spread the replicas of a component over nodes. */}}
{{- define "aihpa.affinity" -}}
{{- if .affinity }}
{{- toYaml .affinity }}
{{- else -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "aihpa.selectorLabels" (dict "root" .root "component" .component) | nindent 12 }}
{{- end }}
{{- end }}

{{/* Policy defaults as command-line flags, shared by the controller and the webhook. */}}
{{- define "aihpa.defaultsArgs" -}}
- --default-min-replicas={{ .Values.defaults.minReplicas }}
- --default-max-replicas={{ .Values.defaults.maxReplicas }}
- --default-target-utilization={{ .Values.defaults.targetUtilization }}
{{- if not (kindIs "invalid" .Values.defaults.scaleDownStabilizationSeconds) }}
- --default-scale-down-stabilization={{ .Values.defaults.scaleDownStabilizationSeconds }}
{{- end }}
- --default-saturation-risk={{ .Values.controller.risk }}
{{- end }}
