{{/* The chart's name, or nameOverride. */}}
{{- define "keelson.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's full name: every object's name, 63 characters at most (DNS label). */}}
{{- define "keelson.fullname" -}}
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

{{/* Labels that select the pods; never change between upgrades. */}}
{{- define "keelson.selectorLabels" -}}
app.kubernetes.io/name: {{ include "keelson.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Labels of every object. */}}
{{- define "keelson.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "keelson.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: engine
app.kubernetes.io/part-of: keelson
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "keelson.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "keelson.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "keelson.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The namespace holding keelson's ApplySet parents in every cluster it syncs
(engine/src/inventory: PARENT_NAMESPACE). */}}
{{- define "keelson.inventoryNamespace" -}}
keelson-system
{{- end }}

{{/* The Secret holding the fingerprint key. */}}
{{- define "keelson.fingerprintSecret" -}}
{{- .Values.fingerprint.existingSecret | default (printf "%s-fingerprint" (include "keelson.fullname" .)) }}
{{- end }}

{{/* Where the Secrets and the config are mounted. */}}
{{- define "keelson.paths" -}}
config: /etc/keelson/config/config.yaml
webhookSecret: /etc/keelson/webhook/{{ .Values.webhook.key }}
githubToken: /etc/keelson/github/{{ .Values.github.key }}
kubeconfig: /etc/keelson/kubeconfig/{{ .Values.clusters.kubeconfig.key }}
fingerprintKey: /etc/keelson/fingerprint/key
state: /var/lib/keelson
{{- end }}

{{/* keelson serve's config file (ServeConfig): the user's `config`, with the keys the
chart owns (listen addresses, mounted files, state directory) set by the chart. */}}
{{- define "keelson.config" -}}
{{- if not .Values.config.repositories }}
{{- fail "config.repositories: name at least one repository for keelson serve to watch" }}
{{- end }}
{{- $paths := include "keelson.paths" . | fromYaml }}
{{- $owned := dict
  "apiVersion" "keelson.dev/v1alpha1"
  "kind" "ServeConfig"
  "listen" (printf "0.0.0.0:%d" (int .Values.http.port))
  "metricsListen" (printf "0.0.0.0:%d" (int .Values.metrics.port))
  "stateDir" $paths.state
  "fingerprintKeyFile" $paths.fingerprintKey }}
{{- if .Values.webhook.existingSecret }}
{{- $_ := set $owned "webhook" (dict "secretFile" $paths.webhookSecret) }}
{{- end }}
{{- if .Values.github.existingSecret }}
{{- $_ := set $owned "github" (dict "tokenFile" $paths.githubToken) }}
{{- end }}
{{- if .Values.clusters.kubeconfig.existingSecret }}
{{- $_ := set $owned "kubeconfig" $paths.kubeconfig }}
{{- end }}
{{- /* The operator's clusters: the one keelson runs in, then config.clusters. */}}
{{- $clusters := list }}
{{- if .Values.clusters.inCluster }}
{{- $clusters = append $clusters (dict "name" .Values.clusters.inClusterName "inCluster" true "labels" .Values.clusters.inClusterLabels) }}
{{- end }}
{{- range .Values.config.clusters }}
{{- $clusters = append $clusters . }}
{{- end }}
{{- if not $clusters }}
{{- fail "name at least one cluster: clusters.inCluster, or config.clusters" }}
{{- end }}
{{- $_ := set $owned "clusters" $clusters }}
{{- if gt (int .Values.replicaCount) 1 }}
{{- /* Replicas split the clusters with Leases in the release namespace; each replica's
identity is its pod name (POD_NAME). */}}
{{- $_ := set $owned "leases" (dict "inCluster" true "namespace" .Release.Namespace) }}
{{- end }}
{{- merge $owned (deepCopy .Values.config) | toYaml }}
{{- end }}
