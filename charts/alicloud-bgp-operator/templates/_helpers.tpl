{{/*
Name of the chart (or nameOverride).
*/}}
{{- define "abo.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name of the release's objects: fullnameOverride, else the release name when it already
contains the chart name, else "<release>-<chart>". Truncated to 63 characters (DNS label).
*/}}
{{- define "abo.fullname" -}}
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

{{- define "abo.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Labels of every object.
*/}}
{{- define "abo.labels" -}}
helm.sh/chart: {{ include "abo.chart" . }}
{{ include "abo.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: alicloud-bgp-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
Labels that select the operator's pods (immutable once deployed).
*/}}
{{- define "abo.selectorLabels" -}}
app.kubernetes.io/name: {{ include "abo.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The ServiceAccount the operator runs as.
*/}}
{{- define "abo.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "abo.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create=false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The leader-election Lease name.
*/}}
{{- define "abo.leaseName" -}}
{{- default (include "abo.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/*
The image reference: repository@digest, or repository:tag (tag defaults to appVersion).
*/}}
{{- define "abo.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}
{{- end }}

{{/*
Checks of value combinations that the schema cannot express; renders nothing.
*/}}
{{- define "abo.validate" -}}
{{- $rrsa := .Values.credentials.rrsa }}
{{- if and .Values.credentials.existingSecret $rrsa.enabled }}
{{- fail "credentials: set either existingSecret or rrsa.enabled, not both (the AccessKey from the Secret would silently win over RRSA)" }}
{{- end }}
{{- if $rrsa.enabled }}
{{- if and $rrsa.roleName $rrsa.projectedToken.enabled }}
{{- fail "credentials.rrsa: set either roleName (ACK pod-identity webhook) or projectedToken.enabled with roleArn/oidcProviderArn, not both" }}
{{- end }}
{{- if not (or $rrsa.roleName $rrsa.projectedToken.enabled) }}
{{- fail "credentials.rrsa.enabled: set roleName (ACK pod-identity webhook) or projectedToken.enabled with roleArn and oidcProviderArn" }}
{{- end }}
{{- if and $rrsa.projectedToken.enabled (not (and $rrsa.roleArn $rrsa.oidcProviderArn)) }}
{{- fail "credentials.rrsa.projectedToken.enabled needs credentials.rrsa.roleArn and credentials.rrsa.oidcProviderArn" }}
{{- end }}
{{- end }}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail "replicaCount > 1 needs leaderElection.enabled=true (two leaders would reconcile the same peers)" }}
{{- end }}
{{- end }}
