{{/*
Names and labels shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "tfjob-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects: the release name when it already contains the chart name
(the default release `tfjob-operator` gives `tfjob-operator`), else `<release>-<chart>`.
*/}}
{{- define "tfjob-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := include "tfjob-operator.name" . }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* The ServiceAccount the operator runs as. */}}
{{- define "tfjob-operator.serviceAccountName" -}}
{{- default (include "tfjob-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/* Selector labels: stable across upgrades (a Deployment's selector is immutable). */}}
{{- define "tfjob-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tfjob-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of every object. helm.sh/chart and app.kubernetes.io/managed-by are the only Helm-specific
ones: the kustomize base carries all the others (a test compares the two).
*/}}
{{- define "tfjob-operator.labels" -}}
{{ include "tfjob-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: kubeflow
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The metrics Service's name (the webhook will get its own Service). */}}
{{- define "tfjob-operator.metricsServiceName" -}}
{{- printf "%s-metrics" (include "tfjob-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The API group of the PodGroups the gang scheduler uses: Volcano's own, or scheduler-plugins' for
any other scheduler name (upstream training-operator's rule). Empty without gang scheduling.
*/}}
{{- define "tfjob-operator.podGroupApiGroup" -}}
{{- if eq (lower .Values.gangScheduler.name) "volcano" }}scheduling.volcano.sh
{{- else if .Values.gangScheduler.name }}scheduling.x-k8s.io
{{- end }}
{{- end }}

{{/*
The rules the operator needs in each namespace it watches, as a ClusterRole (all namespaces) or a
Role per namespace. Exactly what the operator calls; no secrets, no wildcards:
- tfjobs: list+watch feed its cache (it never GETs); delete enforces ttlSecondsAfterFinished.
- tfjobs/status: the status is written as one merge patch.
- pods, services: the operator's children, created and deleted (with UID preconditions) and
  watched by label. get and patch are part of the install contract (issue 6), for adopting
  orphaned children as upstream does; today's reconciler uses neither.
- events: core/v1 Events with source tfjob-controller (as upstream's), one create each.
- PodGroups: only with gang scheduling, in the group of the configured scheduler (create, patch
  of the spec, delete with a UID precondition, list+watch as children; get as for pods).
*/}}
{{- define "tfjob-operator.rules" -}}
- apiGroups: [kubeflow.org]
  resources: [tfjobs]
  verbs: [delete, list, watch]
- apiGroups: [kubeflow.org]
  resources: [tfjobs/status]
  verbs: [patch]
- apiGroups: [""]
  resources: [pods, services]
  verbs: [create, delete, get, list, patch, watch]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- with include "tfjob-operator.podGroupApiGroup" . }}
- apiGroups: [{{ . }}]
  resources: [podgroups]
  verbs: [create, delete, get, list, patch, watch]
{{- end }}
{{- end }}

{{/*
Cluster-scoped rules, wherever the operator watches: at start it reads the TFJob CRD (get, by
name) to check that it keeps every field the operator stores; with gang scheduling it watches
PriorityClasses (list, watch) to order replica types for a PodGroup's minResources.
*/}}
{{- define "tfjob-operator.clusterRules" -}}
- apiGroups: [apiextensions.k8s.io]
  resources: [customresourcedefinitions]
  resourceNames: [tfjobs.kubeflow.org]
  verbs: [get]
{{- if .Values.gangScheduler.name }}
- apiGroups: [scheduling.k8s.io]
  resources: [priorityclasses]
  verbs: [list, watch]
{{- end }}
{{- if .Values.stuckPods.forceDelete }}
# Whether the node of a pod stuck Terminating is lost (--force-delete-stuck-pods).
- apiGroups: [""]
  resources: [nodes]
  verbs: [get]
{{- end }}
{{- end }}

{{/* A one-unit duration (30s, 5m, 2h, 1d) in seconds, for alert thresholds. */}}
{{- define "tfjob-operator.seconds" -}}
{{- $scale := dict "s" 1 "m" 60 "h" 3600 "d" 86400 -}}
{{- mul (regexFind "^[0-9]+" . | int) (get $scale (regexFind "[smhd]$" .)) -}}
{{- end }}
