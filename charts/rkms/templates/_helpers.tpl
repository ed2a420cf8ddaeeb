{{/* Chart name, shortened to fit a label. */}}
{{- define "rkms.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects: the release name, with the chart name unless it
contains it already. */}}
{{- define "rkms.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "rkms.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "rkms.labels" -}}
helm.sh/chart: {{ include "rkms.chart" . }}
{{ include "rkms.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "rkms.selectorLabels" -}}
app.kubernetes.io/name: {{ include "rkms.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "rkms.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "rkms.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "rkms.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{/* The Secret holding the web token, if any. */}}
{{- define "rkms.webSecretName" -}}
{{- if .Values.web.existingSecret }}
{{- .Values.web.existingSecret }}
{{- else if .Values.web.token }}
{{- printf "%s-web" (include "rkms.fullname" .) }}
{{- end }}
{{- end }}

{{- define "rkms.webSecretKey" -}}
{{- if .Values.web.existingSecret }}
{{- .Values.web.existingSecretKey }}
{{- else }}
{{- "token" }}
{{- end }}
{{- end }}

{{/* The KMS health check: a real activation over loopback (not counted as a client). */}}
{{- define "rkms.kmsProbe" -}}
exec:
  command:
    - /rkms
    - healthcheck
    - 127.0.0.1:1688
{{- end }}

{{/* The Secret holding the PostgreSQL connection string, if the store is PostgreSQL. */}}
{{- define "rkms.postgresSecretName" -}}
{{- if .Values.store.postgres.existingSecret }}
{{- .Values.store.postgres.existingSecret }}
{{- else if .Values.store.postgres.url }}
{{- printf "%s-db" (include "rkms.fullname" .) }}
{{- end }}
{{- end }}

{{/* The Secret holding the PostgreSQL TLS files (CA, client certificate and key), if any. */}}
{{- define "rkms.postgresTlsSecretName" -}}
{{- if .Values.store.postgres.tls.existingSecret }}
{{- .Values.store.postgres.tls.existingSecret }}
{{- else if .Values.store.postgres.tls.ca }}
{{- printf "%s-postgres-tls" (include "rkms.fullname" .) }}
{{- end }}
{{- end }}

{{- define "rkms.postgresSecretKey" -}}
{{- if .Values.store.postgres.existingSecret }}
{{- .Values.store.postgres.existingSecretKey }}
{{- else }}
{{- "url" }}
{{- end }}
{{- end }}
