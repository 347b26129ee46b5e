{{- define "rigwatch.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "rigwatch.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "rigwatch.labels" -}}
app.kubernetes.io/name: {{ include "rigwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "rigwatch.selector" -}}
app.kubernetes.io/name: {{ include "rigwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "rigwatch.secretName" -}}
{{- if .Values.secret.create -}}{{ include "rigwatch.fullname" . }}{{- else -}}{{ required "secret.name is required when secret.create is false" .Values.secret.name }}{{- end -}}
{{- end -}}

{{- define "rigwatch.topics" -}}
rigwatch.licenses rigwatch.rigs rigwatch.meters rigwatch.readings rigwatch.purchases rigwatch.alerts rigwatch.rejects
{{- end -}}
