{{/* Chart name, trimmed to a DNS label. */}}
{{- define "qd-extractor.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Full name: `<release>-<chart>`, or `<release>` when the release name already contains the chart
name; 63 characters at most. Suffixes (-operator, -job) are cut from a 54-character stem so that
the suffixed names stay valid too.
*/}}
{{- define "qd-extractor.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 54 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 54 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* `<chart>-<version>` for the helm.sh/chart label. */}}
{{- define "qd-extractor.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels (stable across upgrades: never add to them). */}}
{{- define "qd-extractor.selectorLabels" -}}
app.kubernetes.io/name: {{ include "qd-extractor.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every resource; pass a dict with `ctx` (the root) and `component`. */}}
{{- define "qd-extractor.labels" -}}
{{- $ctx := .ctx -}}
helm.sh/chart: {{ include "qd-extractor.chart" $ctx }}
{{ include "qd-extractor.selectorLabels" $ctx }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: qd-extractor
app.kubernetes.io/version: {{ $ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $ctx.Release.Service }}
{{- with $ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of the operator pod. */}}
{{- define "qd-extractor.operatorSelectorLabels" -}}
{{ include "qd-extractor.selectorLabels" . }}
app.kubernetes.io/component: operator
{{- end }}

{{/* The operator's ServiceAccount name. */}}
{{- define "qd-extractor.operatorServiceAccountName" -}}
{{- if .Values.operator.serviceAccount.create }}
{{- default (printf "%s-operator" (include "qd-extractor.fullname" .)) .Values.operator.serviceAccount.name }}
{{- else }}
{{- required "operator.serviceAccount.name is required when operator.serviceAccount.create is false" .Values.operator.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Jobs' ServiceAccount name (QD_JOB_SERVICE_ACCOUNT). */}}
{{- define "qd-extractor.jobServiceAccountName" -}}
{{- if .Values.extractor.serviceAccount.create }}
{{- default (printf "%s-job" (include "qd-extractor.fullname" .)) .Values.extractor.serviceAccount.name }}
{{- else }}
{{- required "extractor.serviceAccount.name is required when extractor.serviceAccount.create is false" .Values.extractor.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Namespaces that get the Jobs' ServiceAccount: the release's, the watched ones, the extra ones. */}}
{{- define "qd-extractor.jobNamespaces" -}}
{{- $all := concat (list .Release.Namespace) .Values.operator.watchNamespaces .Values.extractor.serviceAccount.extraNamespaces }}
{{- toJson (uniq $all) }}
{{- end }}

{{/* An image reference from {registry, repository, tag}; the tag defaults to appVersion. */}}
{{- define "qd-extractor.image" -}}
{{- $image := .image }}
{{- $repo := $image.repository }}
{{- with $image.registry }}{{ $repo = printf "%s/%s" . $repo }}{{ end }}
{{- printf "%s:%s" $repo (default .ctx.Chart.AppVersion $image.tag | toString) }}
{{- end }}

{{/* True (non-empty) in cluster-wide mode. */}}
{{- define "qd-extractor.clusterWide" -}}
{{- if not .Values.operator.watchNamespaces }}true{{ end }}
{{- end }}

{{/*
The operator's permissions, identical in a Role (per watched namespace) and in the ClusterRole.
Every verb is used (handlers.py, kube.py, kopf):
- extractionruns: kopf lists/watches them, patches finalizer and progress annotations; the run TTL
  deletes them; `get` tells whether a run that blocks another by overlap still exists (kube.run_exists).
- extractionruns/status: the reconciler merge-patches the status.
- extractionruns/finalizers: the Jobs' owner references set blockOwnerDeletion, which clusters
  enforcing OwnerReferencesPermissionEnforcement allow only with `update` on the owner's finalizers.
- jobs: the kopf index lists/watches them; the reconciler creates them and patches `suspend`.
  No `delete`: Jobs go with their run through owner references.
- pods: the reconciler lists a failed Job's pods for termination reasons.
- events: kopf posts core/v1 Events (kopf.event).
*/}}
{{- define "qd-extractor.operatorRules" -}}
- apiGroups: [queridodiario.ok.org.br]
  resources: [extractionruns]
  verbs: [get, list, watch, patch, delete]
- apiGroups: [queridodiario.ok.org.br]
  resources: [extractionruns/status]
  verbs: [patch]
- apiGroups: [queridodiario.ok.org.br]
  resources: [extractionruns/finalizers]
  verbs: [update]
- apiGroups: [batch]
  resources: [jobs]
  verbs: [list, watch, create, patch]
- apiGroups: [""]
  resources: [pods]
  verbs: [list]
- apiGroups: [""]
  resources: [events]
  verbs: [create]
{{- end }}
