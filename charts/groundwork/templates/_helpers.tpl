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

{{/*
A name made of the full name and a suffix, at most 63 characters: the full name is cut, never
the suffix, so two names never collide and a name with a hash stays unique.
Call with (list $ "-suffix") and an optional third element, a length limit below 63.
*/}}
{{- define "groundwork.suffixedName" -}}
{{- $ := index . 0 }}
{{- $suffix := index . 1 }}
{{- $limit := 63 }}
{{- if gt (len .) 2 }}{{ $limit = index . 2 | int }}{{ end }}
{{- printf "%s%s" (include "groundwork.fullname" $ | trunc (int (sub $limit (len $suffix))) | trimSuffix "-") $suffix }}
{{- end }}

{{/*
Argo CD applies plain resources wave by wave and waits until a wave is healthy: the database
(-2), then the migration Job (-1), then the app (0, no annotation). Only under gitOps.enabled;
helm orders with hooks instead. Call with (list $ "-2").
*/}}
{{- define "groundwork.syncWave" -}}
{{- if (index . 0).Values.gitOps.enabled -}}
argocd.argoproj.io/sync-wave: {{ index . 1 | quote }}
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

{{/*
At most 52 characters: the StatefulSet's pods carry controller-revision-hash = <name>-<10
characters>, a label value limited to 63.
*/}}
{{- define "groundwork.postgresql.fullname" -}}
{{- include "groundwork.suffixedName" (list . "-postgresql" 52) }}
{{- end }}

{{- define "groundwork.postgresql.image" -}}
{{- $image := .Values.postgresql.image }}
{{- printf "%s:%s" $image.repository $image.tag }}{{ with $image.digest }}@{{ . }}{{ end }}
{{- end }}

{{/*
Scheduling and pulling shared by every pod of the app image (server, migration Job, test pod).
*/}}
{{- define "groundwork.podScheduling" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/*
The migration Job's name.
- gitOps.enabled: a plain Job named after a hash of its own rendered spec (image, settings,
  database references, migrations.*; the labels carry the chart and app versions), as GitLab
  names its migrations Job. A Job's pod template is immutable: any change gives a new Job,
  which runs once and never collides with an earlier one; the same values give the same name.
- helm, bundled PostgreSQL, install: the plain first-install Job "-migrate-install".
- helm otherwise: the hook "-migrate", replaced on every upgrade (before-hook-creation).
*/}}
{{- define "groundwork.migrationJobName" -}}
{{- if .Values.gitOps.enabled }}
{{- $hash := printf "%s\n%s\n%s" .Chart.Version .Chart.AppVersion (include "groundwork.migrationJobSpec" .) | sha256sum | trunc 10 }}
{{- include "groundwork.suffixedName" (list . (printf "-migrate-%s" $hash)) }}
{{- else if and .Values.postgresql.enabled .Release.IsInstall }}
{{- include "groundwork.suffixedName" (list . "-migrate-install") }}
{{- else }}
{{- include "groundwork.suffixedName" (list . "-migrate") }}
{{- end }}
{{- end }}

{{/*
The Secret with the external database's credentials: the user's existingSecret, or the one
this chart renders from externalDatabase.*.
*/}}
{{- define "groundwork.databaseSecretName" -}}
{{- .Values.externalDatabase.existingSecret | default (include "groundwork.suffixedName" (list . "-database")) }}
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
migrationPassword: {{ ternary "MIGRATION_DATABASE_PASSWORD" "" (not (empty $db.migrationPassword)) | quote }}
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
HEADER_READ_TIMEOUT: {{ $config.headerReadTimeout | quote }}
WORKER_MAX_CONCURRENCY: {{ $config.workerMaxConcurrency | int64 | quote }}
LIMIT_REQUEST_LINE: {{ $config.limitRequest.line | int64 | quote }}
LIMIT_REQUEST_FIELDS: {{ $config.limitRequest.fields | int64 | quote }}
LIMIT_REQUEST_FIELD_SIZE: {{ $config.limitRequest.fieldSize | int64 | quote }}
LIMIT_REQUEST_HEAD: {{ $config.limitRequest.head | int64 | quote }}
DB_POOL_SIZE: {{ $config.database.poolSize | int64 | quote }}
DB_MAX_OVERFLOW: {{ $config.database.maxOverflow | int64 | quote }}
DB_POOL_TIMEOUT: {{ $config.database.poolTimeout | quote }}
DB_POOL_RECYCLE: {{ $config.database.poolRecycle | int64 | quote }}
DB_POOL_PRE_PING: {{ $config.database.poolPrePing | quote }}
DB_CONNECT_TIMEOUT: {{ $config.database.connectTimeout | int64 | quote }}
DB_STATEMENT_TIMEOUT_MS: {{ $config.database.statementTimeoutMs | int64 | quote }}
DB_HEALTH_TIMEOUT: {{ $config.database.healthTimeout | quote }}
DB_PGBOUNCER: {{ and (not .Values.postgresql.enabled) .Values.externalDatabase.pgbouncer | quote }}
{{- /* Identity: no switch turns authentication off, so an issuer and an audience are required. */}}
{{- $oidc := .Values.oidc }}
OIDC_ISSUER: {{ required "oidc.issuer is required: the OpenID Provider's issuer URL (discovery at <issuer>/.well-known/openid-configuration); authentication cannot be turned off" $oidc.issuer | quote }}
OIDC_AUDIENCE: {{ required "oidc.audience is required: the audience (aud) that access tokens for this API carry" $oidc.audience | quote }}
{{- with $oidc.jwksUrl }}
OIDC_JWKS_URL: {{ . | quote }}
{{- end }}
OIDC_ALGORITHMS: {{ join "," $oidc.algorithms | quote }}
OIDC_LEEWAY_SECONDS: {{ $oidc.leewaySeconds | int64 | quote }}
OIDC_REQUIRE_AT_JWT: {{ $oidc.requireAtJwt | quote }}
OIDC_ROLES_CLAIM: {{ $oidc.rolesClaim | quote }}
OIDC_ADMIN_ROLE: {{ $oidc.adminRole | quote }}
OIDC_JWKS_REFRESH_COOLDOWN_SECONDS: {{ $oidc.jwksRefreshCooldownSeconds | int64 | quote }}
OIDC_HTTP_TIMEOUT_SECONDS: {{ $oidc.httpTimeoutSeconds | quote }}
{{- with $oidc.docsClientId }}
OIDC_DOCS_CLIENT_ID: {{ . | quote }}
{{- end }}
{{- with .Values.cors.allowedOrigins }}
CORS_ALLOWED_ORIGINS: {{ join "," . | quote }}
{{- end }}
{{- end }}

{{/*
The ports of the OpenID Provider's URLs (issuer, and the JWKS override when set), which the
pods fetch discovery and keys from.
*/}}
{{- define "groundwork.oidcPorts" -}}
{{- $ports := list }}
{{- range (compact (list .Values.oidc.issuer .Values.oidc.jwksUrl)) }}
{{- $url := urlParse . }}
{{- $hostPort := splitList ":" $url.host }}
{{- if gt (len $hostPort) 1 }}
{{- $ports = append $ports (last $hostPort | int) }}
{{- else }}
{{- $ports = append $ports (ternary 443 80 (eq $url.scheme "https")) }}
{{- end }}
{{- end }}
{{- toJson (uniq $ports) }}
{{- end }}

{{/*
How the application reaches its database: two roles.
- the RUNTIME role (DATABASE_URL [+ DATABASE_PASSWORD]) for the server pods: it owns nothing;
- the OWNER role (MIGRATION_DATABASE_URL [+ MIGRATION_DATABASE_PASSWORD]) for the migration
  Job only, which also gets DATABASE_URL to know which role to grant the tables to.
Credentials are files, never environment variables: the Secret is mounted at SECRETS_DIR,
one file per setting named like its variable, which the app reads (app/core/config.py).
bundled: password-free URLs to the PostgreSQL Service in the environment, passwords as files.
external: every value a file from the database Secret (a key "" is not used).
Call with (dict "context" $ "forMigrations" true) for the Job's variables.
*/}}
{{- define "groundwork.secretsDir" -}}
/var/run/secrets/groundwork
{{- end }}

{{- define "groundwork.databaseEnv" -}}
{{- $ := .context }}
- name: SECRETS_DIR
  value: {{ include "groundwork.secretsDir" $ | quote }}
{{- if $.Values.postgresql.enabled }}
{{- $auth := $.Values.postgresql.auth }}
{{- $server := printf "%s:%d" (include "groundwork.postgresql.fullname" $) (int $.Values.postgresql.service.port) }}
- name: DATABASE_URL
  value: {{ printf "postgresql://%s@%s/%s" $auth.runtimeUsername $server $auth.database | quote }}
{{- if .forMigrations }}
- name: MIGRATION_DATABASE_URL
  value: {{ printf "postgresql://%s@%s/%s" $auth.username $server $auth.database | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/*
The Secret volume behind SECRETS_DIR: only the keys this pod needs, each as the file named
like its setting. Same call as groundwork.databaseEnv.
*/}}
{{- define "groundwork.secretsVolume" -}}
{{- $ := .context }}
- name: secrets
  secret:
    {{- if $.Values.postgresql.enabled }}
    {{- $keys := $.Values.postgresql.auth.secretKeys }}
    secretName: {{ include "groundwork.postgresql.secretName" $ }}
    items:
      {{- if .forMigrations }}
      - key: {{ $keys.userPasswordKey }}
        path: MIGRATION_DATABASE_PASSWORD
      {{- else }}
      - key: {{ $keys.runtimePasswordKey }}
        path: DATABASE_PASSWORD
      {{- end }}
    {{- else }}
    {{- $keys := include "groundwork.databaseSecretKeys" $ | fromYaml }}
    {{- $names := dict "url" "DATABASE_URL" "password" "DATABASE_PASSWORD" }}
    {{- if .forMigrations }}
    {{- $_ := set $names "migrationUrl" "MIGRATION_DATABASE_URL" }}
    {{- $_ := set $names "migrationPassword" "MIGRATION_DATABASE_PASSWORD" }}
    {{- end }}
    secretName: {{ include "groundwork.databaseSecretName" $ }}
    items:
      {{- range $value := list "url" "password" "migrationUrl" "migrationPassword" }}
      {{- $variable := get $names $value }}
      {{- $key := get $keys $value }}
      {{- if and $variable $key }}
      - key: {{ $key }}
        path: {{ $variable }}
      {{- end }}
      {{- end }}
    {{- end }}
    {{- /* Read-only for the pod's fsGroup. */}}
    defaultMode: 0440
{{- end }}

{{- define "groundwork.secretsMount" -}}
- name: secrets
  mountPath: {{ include "groundwork.secretsDir" . }}
  readOnly: true
{{- end }}

{{/*
SQL (psql) that makes the bundled PostgreSQL's runtime role what the application expects:
it exists, may log in with the Secret's password, has no special attribute, owns nothing,
and may only CONNECT to the database (the migration grants it the schema and the tables).
Idempotent. Reads APP_RUNTIME_ROLE, APP_DATABASE_NAME and the password from the file at
APP_RUNTIME_PASSWORD_FILE (never from the environment or the command line); run it as the
superuser.
*/}}
{{- define "groundwork.postgresql.runtimeRoleSql" -}}
\getenv runtime_role APP_RUNTIME_ROLE
\set runtime_password `cat "$APP_RUNTIME_PASSWORD_FILE"`
\getenv app_database APP_DATABASE_NAME
SELECT format('CREATE ROLE %I', :'runtime_role')
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'runtime_role') \gexec
ALTER ROLE :"runtime_role" LOGIN PASSWORD :'runtime_password'
  NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOREPLICATION;
REVOKE ALL ON DATABASE :"app_database" FROM PUBLIC;
GRANT CONNECT ON DATABASE :"app_database" TO :"runtime_role";
{{- end }}

{{/*
The migration Job's first step with the bundled PostgreSQL: wait for the server, then make
sure the runtime role exists. An install's init script already created it; a release
installed before the chart had two roles ran its init script without it, so on that
upgrade this step creates it, before the migration grants it the tables.
*/}}
{{- define "groundwork.postgresql.ensureRuntimeRoleScript" -}}
set -eu
# The superuser's password, from its mounted file, for this script's processes only.
PGPASSWORD=$(cat "$ADMIN_PASSWORD_FILE")
export PGPASSWORD
deadline=$(( $(date +%s) + WAIT_TIMEOUT_SECONDS ))
until pg_isready --quiet; do
  if [ "$(date +%s)" -ge "$deadline" ]; then
    echo "PostgreSQL at $PGHOST:$PGPORT did not answer within $WAIT_TIMEOUT_SECONDS s" >&2
    exit 1
  fi
  sleep 2
done
psql -v ON_ERROR_STOP=1 --no-psqlrc --quiet <<'SQL'
{{ include "groundwork.postgresql.runtimeRoleSql" . }}
SQL
echo "runtime role $APP_RUNTIME_ROLE is ready"
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
{{- $db := .Values.externalDatabase }}
{{- if and $db.existingSecret (or $db.url $db.migrationUrl $db.password $db.migrationPassword) }}
{{- fail "externalDatabase.existingSecret is set: leave externalDatabase.url, migrationUrl, password and migrationPassword empty (they would be ignored)" }}
{{- end }}
{{- $auth := .Values.postgresql.auth }}
{{- if and .Values.postgresql.enabled (or (eq $auth.runtimeUsername $auth.username) (eq $auth.runtimeUsername "postgres")) }}
{{- fail "postgresql.auth.runtimeUsername must differ from postgresql.auth.username and from postgres: the server pods' role owns nothing" }}
{{- end }}
{{- include "groundwork.validateKubernetes" . }}
{{- include "groundwork.validateConnectionBudget" . }}
{{- range $name, $url := dict "url" $db.url "migrationUrl" $db.migrationUrl }}
{{- if and $url (not (hasPrefix "postgresql://" $url)) }}
{{- fail (printf "externalDatabase.%s must start with postgresql:// (the app accepts no other scheme, not postgres:// either)" $name) }}
{{- end }}
{{- end }}
{{- if and .Values.gitOps.enabled .Values.postgresql.enabled (not $auth.existingSecret) }}
{{- fail "gitOps.enabled with the bundled PostgreSQL: set postgresql.auth.existingSecret (keys postgres-password, password, runtime-password; e.g. from External Secrets or a SealedSecret). Under helm template the chart cannot read back the passwords it generated, so every sync would write new ones while PostgreSQL keeps the first" }}
{{- end }}
{{- if and (eq .Values.config.env "prod") .Values.oidc.issuer (not (hasPrefix "https://" .Values.oidc.issuer)) }}
{{- fail "oidc.issuer must be an https:// URL when config.env is prod" }}
{{- end }}
{{- end }}


{{/*
Values the API server would refuse: fail at render, not half-way through a sync.
*/}}
{{- define "groundwork.validateKubernetes" -}}
{{- $scaling := .Values.autoscaling }}
{{- if and $scaling.enabled (gt (int $scaling.minReplicas) (int $scaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) must not exceed autoscaling.maxReplicas (%d)" (int $scaling.minReplicas) (int $scaling.maxReplicas)) }}
{{- end }}
{{- if eq (include "groundwork.maxSurgePods" (list . 1)) "0" }}
{{- fail (printf "rollingUpdate.maxSurge (%v) must be above 0: maxUnavailable is always 0, and a rolling update needs one of them" .Values.rollingUpdate.maxSurge) }}
{{- end }}
{{- range $kind := list "startup" "liveness" }}
{{- $threshold := get (get $.Values.probes $kind) "successThreshold" | default 1 | int }}
{{- if ne $threshold 1 }}
{{- fail (printf "probes.%s.successThreshold (%d) must be 1: Kubernetes accepts no other value for startup and liveness probes" $kind $threshold) }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Pods a rolling update adds over `pods` (list $ pods): maxSurge as a number, or its percentage
of the pods rounded up, as the Deployment controller counts it.
*/}}
{{- define "groundwork.maxSurgePods" -}}
{{- $ := index . 0 }}
{{- $pods := index . 1 | int }}
{{- $surge := toString $.Values.rollingUpdate.maxSurge }}
{{- if hasSuffix "%" $surge }}
{{- div (add (mul $pods (trimSuffix "%" $surge | int)) 99) 100 }}
{{- else }}
{{- $surge | int }}
{{- end }}
{{- end }}

{{/*
The connection budget: the most pods a rollout can run at once ((autoscaling.maxReplicas or
replicaCount) + maxSurge), each with webConcurrency workers holding poolSize + maxOverflow
connections plus the readiness probe's own, and the migration Job's two (the advisory lock's
and Alembic's), must fit the database's limit minus its reserved connections.
*/}}
{{- define "groundwork.validateConnectionBudget" -}}
{{- $pods := ternary .Values.autoscaling.maxReplicas .Values.replicaCount .Values.autoscaling.enabled | int }}
{{- $surge := include "groundwork.maxSurgePods" (list . $pods) | int }}
{{- $workers := int .Values.config.webConcurrency }}
{{- $pool := .Values.config.database }}
{{- $perWorker := add (int $pool.poolSize) (int $pool.maxOverflow) 1 }}
{{- $migration := 2 }}
{{- $needed := add (mul (add $pods $surge) $workers $perWorker) $migration }}
{{- if .Values.postgresql.enabled }}
{{- $max := int .Values.postgresql.maxConnections }}
{{- $reserved := int .Values.postgresql.superuserReservedConnections }}
{{- if gt $needed (sub $max $reserved) }}
{{- fail (printf "connection budget exceeded: (%d pods + %d surge) x %d workers x (poolSize %d + maxOverflow %d + 1 readiness) + %d migration = %d connections, but postgresql.maxConnections %d - superuserReservedConnections %d leaves %d. Raise postgresql.maxConnections or lower replicas, workers or the pool" $pods $surge $workers (int $pool.poolSize) (int $pool.maxOverflow) $migration $needed $max $reserved (sub $max $reserved)) }}
{{- end }}
{{- else }}
{{- $max := int .Values.externalDatabase.maxConnections }}
{{- $reserved := int .Values.externalDatabase.reservedConnections }}
{{- if gt $needed (sub $max $reserved) }}
{{- fail (printf "connection budget exceeded: (%d pods + %d surge) x %d workers x (poolSize %d + maxOverflow %d + 1 readiness) + %d migration = %d connections, but externalDatabase.maxConnections %d - reservedConnections %d leaves %d. State the database's real limit in externalDatabase.maxConnections or lower replicas, workers or the pool" $pods $surge $workers (int $pool.poolSize) (int $pool.maxOverflow) $migration $needed $max $reserved (sub $max $reserved)) }}
{{- end }}
{{- end }}
{{- end }}
