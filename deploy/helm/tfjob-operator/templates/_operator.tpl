{{/*
The operator's command line and environment, shared by the Deployment's container, the
preflight init container and the `helm test` pod (both run `tfjob-operator check` with the same
flags, so they check what the operator will do).
*/}}

{{/* The image reference. */}}
{{- define "tfjob-operator.image" -}}
{{- $image := .Values.image -}}
{{- $reference := printf "%s:%s" $image.repository ($image.tag | default .Chart.AppVersion) -}}
{{- with $image.registry }}{{ $reference = printf "%s/%s" . $reference }}{{ end -}}
{{- with $image.digest }}{{ $reference = printf "%s@%s" $reference . }}{{ end -}}
{{ $reference | quote }}
{{- end }}

{{/* Flags as in docs/configuration.md; each also has a TFJOB_* variable. */}}
{{- define "tfjob-operator.args" -}}
- --metrics-bind-address=:{{ .Values.metrics.port }}
- --health-probe-bind-address=:{{ .Values.healthProbe.port }}
{{- with .Values.namespaces }}
- --namespace={{ join "," . }}
{{- end }}
{{- with .Values.jobSelector }}
- --job-selector={{ . }}
{{- end }}
- --concurrency={{ .Values.concurrency | int }}
- --kube-api-qps={{ .Values.kubeApi.qps }}
- --kube-api-burst={{ .Values.kubeApi.burst | int }}
- --watch-timeout-seconds={{ .Values.watchTimeoutSeconds | int }}
- --list-page-size={{ .Values.listPageSize | int }}
- --service-mode={{ .Values.serviceMode }}
- --request-timeout={{ .Values.kubeApi.requestTimeout }}
- --stall-timeout={{ .Values.healthProbe.stallTimeout }}
- --stuck-terminating-after={{ .Values.stuckPods.after }}
{{- if .Values.stuckPods.forceDelete }}
- --force-delete-stuck-pods=true
{{- end }}
- --pending-threshold={{ .Values.startingPods.pendingThreshold }}
{{- with .Values.startingPods.pendingDeadline }}
- --pending-deadline={{ . }}
{{- end }}
{{- if .Values.leaderElection.enabled }}
# The Lease lives in the pod's namespace (POD_NAMESPACE below).
- --leader-elect=true
- --leader-election-id={{ .Values.leaderElection.id }}
- --lease-duration={{ .Values.leaderElection.leaseDuration }}
- --renew-deadline={{ .Values.leaderElection.renewDeadline }}
- --retry-period={{ .Values.leaderElection.retryPeriod }}
{{- end }}
{{- with .Values.gangScheduler.name }}
- --gang-scheduler-name={{ . }}
{{- end }}
- --log-level={{ .Values.logging.level }}
- --log-format={{ .Values.logging.format }}
{{- with include "tfjob-operator.webhookArgs" . }}
{{ . | trim }}
{{- end }}
{{- range .Values.extraArgs }}
- {{ . | quote }}
{{- end }}
{{- end }}

{{- define "tfjob-operator.env" -}}
# Leader identity and event reporter instance.
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
# The leader-election Lease's namespace.
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- with .Values.clusterDomain }}
- name: CUSTOM_CLUSTER_DOMAIN
  value: {{ . | quote }}
{{- end }}
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/*
A container running `tfjob-operator check` with the operator's flags, environment and
identity: PASS/WARN/FAIL lines in its log, a non-zero exit when something must be fixed.
*/}}
{{- define "tfjob-operator.preflightContainer" -}}
- name: preflight
  image: {{ include "tfjob-operator.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - check
    {{- include "tfjob-operator.args" . | trim | nindent 4 }}
  env:
    {{- include "tfjob-operator.env" . | trim | nindent 4 }}
  resources:
    requests:
      cpu: 10m
      memory: 32Mi
    limits:
      memory: 64Mi
  securityContext:
    {{- toYaml .Values.securityContext | nindent 4 }}
{{- end }}
