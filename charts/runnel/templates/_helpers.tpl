{{/*
The app name: runnel-operator. Not "runnel": the broker pods of a Cluster
carry app.kubernetes.io/name=runnel and instance=<cluster>, and their
StatefulSet, Services and PodDisruptionBudget select by those two labels;
the operator's own pods must never match them, whatever the release and
Cluster names.
*/}}
{{- define "runnel.name" -}}
{{- default "runnel-operator" .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: <release>-operator, or the release
name alone when it already ends in "operator".
*/}}
{{- define "runnel.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if hasSuffix "operator" .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-operator" .Release.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "runnel.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels of every object of the chart. */}}
{{- define "runnel.labels" -}}
helm.sh/chart: {{ include "runnel.chart" . }}
{{ include "runnel.selectorLabels" . }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: runnel
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The labels the Deployment and the Service select the operator pods by. */}}
{{- define "runnel.selectorLabels" -}}
app.kubernetes.io/name: {{ include "runnel.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "runnel.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "runnel.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "runnel.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "runnel.leaseName" -}}
{{- default (include "runnel.fullname" .) .Values.leaderElection.leaseName }}
{{- end }}

{{/* Where the monitors go. */}}
{{- define "runnel.monitorNamespace" -}}
{{- default .Release.Namespace .Values.serviceMonitor.namespace }}
{{- end }}

{{/*
The rules the operator needs in each namespace it watches: a ClusterRole
when it watches all of them, a Role in watchNamespace otherwise. Leases are
in a Role of their own (rbac.yaml), in the release namespace only.
*/}}
{{- define "runnel.watchRules" -}}
# The custom resources: read, watch, and server-side apply.
- apiGroups: ["runnel.dev"]
  resources: ["clusters", "topics", "consumergroups"]
  verbs: ["get", "list", "watch", "patch"]
# Their status subresources.
- apiGroups: ["runnel.dev"]
  resources: ["clusters/status", "topics/status", "consumergroups/status"]
  verbs: ["get", "patch"]
# topics: the Topic finalizer. clusters, consumergroups: the owner references the operator
# sets with blockOwnerDeletion need update on the owner's finalizers where
# the OwnerReferencesPermissionEnforcement admission plugin runs.
- apiGroups: ["runnel.dev"]
  resources: ["clusters/finalizers", "topics/finalizers", "consumergroups/finalizers"]
  verbs: ["update"]
# What a Cluster becomes, by server-side apply (a PATCH that creates the
# object is authorized as create too). Owner references garbage collect
# them, so no delete.
- apiGroups: ["apps"]
  resources: ["statefulsets"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: [""]
  resources: ["services", "configmaps"]
  verbs: ["get", "list", "watch", "create", "patch"]
- apiGroups: ["policy"]
  resources: ["poddisruptionbudgets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Backlog-forwarding surges: the overflow Topic (created by server-side
# apply), the forwarders' Deployment (owned by the
# ConsumerGroup; deleted when the surge hands back), and the group's own
# and the overflow's consumers scaled through their scale subresource.
- apiGroups: ["runnel.dev"]
  resources: ["topics"]
  verbs: ["create"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "create", "patch", "delete"]
- apiGroups: ["apps"]
  resources: ["deployments/scale", "statefulsets/scale"]
  verbs: ["get", "patch"]
# Events for what it does.
- apiGroups: ["events.k8s.io"]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
