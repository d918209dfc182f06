{{/*
Naming and labels follow `helm create`.
*/}}
{{- define "groundwork.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name, at most 63 characters (DNS label limit). The release name is
used alone when it already contains the chart name.
*/}}
{{- define "groundwork.fullname" -}}
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

{{- define "groundwork.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "groundwork.labels" -}}
helm.sh/chart: {{ include "groundwork.chart" . }}
{{ include "groundwork.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: groundwork
{{- end }}

{{- define "groundwork.selectorLabels" -}}
app.kubernetes.io/name: {{ include "groundwork.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Each workload adds its component to the selector, so the Service, the PDB and the spread
constraints never pick the migration Job, the test pod or PostgreSQL.
*/}}
{{- define "groundwork.serverSelectorLabels" -}}
{{ include "groundwork.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "groundwork.migrationSelectorLabels" -}}
{{ include "groundwork.selectorLabels" . }}
app.kubernetes.io/component: migration
{{- end }}

{{- define "groundwork.postgresqlSelectorLabels" -}}
{{ include "groundwork.selectorLabels" . }}
app.kubernetes.io/component: database
{{- end }}

{{- define "groundwork.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "groundwork.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "groundwork.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion }}
{{- if .Values.image.digest }}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{- define "groundwork.postgresql.fullname" -}}
{{- printf "%s-postgresql" (include "groundwork.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The Secret with the external database's credentials: the user's existingSecret, or the one
this chart renders from externalDatabase.*.
*/}}
{{- define "groundwork.databaseSecretName" -}}
{{- .Values.externalDatabase.existingSecret | default (printf "%s-database" (include "groundwork.fullname" .)) }}
{{- end }}

{{/*
The keys of the external database Secret that are in use ("" for none): the configured
existingSecretKeys, or the fixed keys of the Secret this chart renders.
*/}}
{{- define "groundwork.databaseSecretKeys" -}}
{{- $db := .Values.externalDatabase }}
{{- if $db.existingSecret }}
{{- toYaml $db.existingSecretKeys }}
{{- else }}
url: DATABASE_URL
migrationUrl: {{ ternary "MIGRATION_DATABASE_URL" "" (not (empty $db.migrationUrl)) | quote }}
password: {{ ternary "DATABASE_PASSWORD" "" (not (empty $db.password)) | quote }}
{{- end }}
{{- end }}

{{- define "groundwork.postgresql.secretName" -}}
{{- .Values.postgresql.auth.existingSecret | default (include "groundwork.postgresql.fullname" .) }}
{{- end }}

{{/*
Annotations that make a Secret exist before the migration Job (weight 0) reads it on
install and on upgrade. Helm keeps hook resources on uninstall, which the bundled
PostgreSQL needs: its volume outlives the release, so its password must too.
*/}}
{{- define "groundwork.secretHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end }}

{{/*
Non-secret settings, named like the application's environment variables. The ConfigMap
holds them for the pods; the migration Job, which can run before the ConfigMap exists,
gets them inline.
*/}}
{{- define "groundwork.settings" -}}
{{- /* int64: helm reads YAML numbers as floats, and 1048576 would print as 1.048576e+06. */}}
{{- $config := .Values.config }}
ENV: {{ $config.env | quote }}
LOG_LEVEL: {{ $config.logLevel | quote }}
LOG_FORMAT: {{ $config.logFormat | quote }}
WEB_CONCURRENCY: {{ $config.webConcurrency | int64 | quote }}
GRACEFUL_TIMEOUT: {{ $config.gracefulTimeout | int64 | quote }}
WORKER_TIMEOUT: {{ $config.workerTimeout | int64 | quote }}
KEEPALIVE: {{ $config.keepalive | int64 | quote }}
MAX_REQUESTS: {{ $config.maxRequests | int64 | quote }}
MAX_REQUESTS_JITTER: {{ $config.maxRequestsJitter | int64 | quote }}
FORWARDED_ALLOW_IPS: {{ $config.forwardedAllowIps | quote }}
MAX_REQUEST_BODY_BYTES: {{ $config.maxRequestBodyBytes | int64 | quote }}
DB_POOL_SIZE: {{ $config.database.poolSize | int64 | quote }}
DB_MAX_OVERFLOW: {{ $config.database.maxOverflow | int64 | quote }}
DB_POOL_TIMEOUT: {{ $config.database.poolTimeout | quote }}
DB_POOL_RECYCLE: {{ $config.database.poolRecycle | int64 | quote }}
DB_POOL_PRE_PING: {{ $config.database.poolPrePing | quote }}
DB_CONNECT_TIMEOUT: {{ $config.database.connectTimeout | int64 | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ $config.database.statementTimeoutMs | int64 | quote }}
DB_HEALTH_TIMEOUT: {{ $config.database.healthTimeout | quote }}
DB_PGBOUNCER: {{ and (not .Values.postgresql.enabled) .Values.externalDatabase.pgbouncer | quote }}
{{- end }}

{{/*
How the application reaches its database.
- bundled: a password-free URL to the PostgreSQL Service plus DATABASE_PASSWORD from its Secret.
- external: DATABASE_URL (and DATABASE_PASSWORD when a key is named) from the database Secret.
Call with (dict "context" $ "forMigrations" true) to add the direct MIGRATION_DATABASE_URL.
*/}}
{{- define "groundwork.databaseEnv" -}}
{{- $ := .context }}
{{- if $.Values.postgresql.enabled }}
{{- $auth := $.Values.postgresql.auth }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s@%s:%d/%s" $auth.username (include "groundwork.postgresql.fullname" $) (int $.Values.postgresql.service.port) $auth.database | quote }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "groundwork.postgresql.secretName" $ }}
      key: {{ $auth.secretKeys.userPasswordKey }}
{{- else }}
{{- $keys := include "groundwork.databaseSecretKeys" $ | fromYaml }}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "groundwork.databaseSecretName" $ }}
      key: {{ $keys.url }}
{{- if $keys.password }}
- name: DATABASE_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "groundwork.databaseSecretName" $ }}
      key: {{ $keys.password }}
{{- end }}
{{- if and .forMigrations $keys.migrationUrl }}
- name: MIGRATION_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "groundwork.databaseSecretName" $ }}
      key: {{ $keys.migrationUrl }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The restricted container security context shared by every container of the app image.
*/}}
{{- define "groundwork.containerSecurityContext" -}}
{{- toYaml .Values.securityContext }}
{{- end }}

{{/*
Fail early on settings that would break a rollout in ways only a cluster would show.
*/}}
{{- define "groundwork.validate" -}}
{{- $preStop := int .Values.lifecycle.preStopSleepSeconds }}
{{- $drain := int .Values.config.gracefulTimeout }}
{{- if le (int .Values.terminationGracePeriodSeconds) (add $preStop $drain) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed lifecycle.preStopSleepSeconds (%d) + config.gracefulTimeout (%d), or the kubelet kills requests mid-drain" (int .Values.terminationGracePeriodSeconds) $preStop $drain) }}
{{- end }}
{{- if ge (int .Values.migrations.waitTimeout) (int .Values.migrations.activeDeadlineSeconds) }}
{{- fail "migrations.waitTimeout must be below migrations.activeDeadlineSeconds" }}
{{- end }}
{{- if and (not .Values.postgresql.enabled) (not .Values.externalDatabase.existingSecret) (not .Values.externalDatabase.url) }}
{{- fail "postgresql.enabled is false: set externalDatabase.url or externalDatabase.existingSecret" }}
{{- end }}
{{- if and .Values.externalDatabase.existingSecret (or .Values.externalDatabase.url .Values.externalDatabase.migrationUrl .Values.externalDatabase.password) }}
{{- fail "externalDatabase.existingSecret is set: leave externalDatabase.url, migrationUrl and password empty (they would be ignored)" }}
{{- end }}
{{- end }}
