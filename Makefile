# batch-dispatch: every command a user or CI needs. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
CHECKOV := $(VENV)/checkov/bin/checkov
ENV ?= dev
REGION ?= us-east-1
# The SAM CLI and cfn-lint need a region; none of the offline targets talk to AWS.
export AWS_DEFAULT_REGION ?= $(REGION)
export SAM_CLI_TELEMETRY := 0

.PHONY: help venv demo test unit integration template-test lint fmt build deploy deploy-guided clean bench

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

# The project itself is installed editable last (no dependencies: the pins above are the versions), so
# $(BIN)/batch-dispatch, the operator command, runs the working tree's code.
$(BIN)/.installed: requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "batch-dispatch needs Python 3.11+; '$(PYTHON)' is $$($(PYTHON) --version 2>&1). Try: make PYTHON=python3.12 ..."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps -e .
	@touch $@

# checkov pins versions that conflict with aws-sam-cli, so it lives in a virtualenv of its own.
$(VENV)/checkov/.installed: requirements-checkov.txt | $(BIN)/.installed
	@test -x $(VENV)/checkov/bin/python || $(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-checkov.txt
	@touch $@

venv: $(BIN)/.installed $(VENV)/checkov/.installed ## Create .venv with the pinned dev tools (re-used when present)

demo: $(BIN)/.installed ## Run the whole system locally (no AWS account, no Docker) and explain what happened
	@$(BIN)/python -m emulator demo

test: venv lint ## Lint, then every test (unit, template, integration)
	$(BIN)/python -m pytest -n 2 -q

unit: $(BIN)/.installed ## Unit tests only
	$(BIN)/python -m pytest -q tests/unit

integration: $(BIN)/.installed ## Integration tests (emulator on loopback)
	$(BIN)/python -m pytest -q tests/integration

template-test: $(BIN)/.installed ## Template tests only
	$(BIN)/python -m pytest -q tests/template

# checkov does not expand Fn::ForEach (it would skip every looped resource), so it reads the template
# as CloudFormation deploys it: the loops expanded, into a temporary file.
lint: venv ## ruff, mypy, sam validate --lint, cfn-lint, checkov (on the expanded template)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/sam validate --lint --template template.yaml
	$(BIN)/cfn-lint template.yaml job-types/job-type.yaml
	$(BIN)/python scripts/check_job_types.py --job-types job-types/examples.yaml
	$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f job-types/job-type.yaml
	@expanded_dir=$$(mktemp -d) && trap 'rm -rf "$$expanded_dir"' EXIT && \
		echo "checkov: template.yaml with its loops expanded" && \
		$(BIN)/python -m emulator.sam --output "$$expanded_dir/template.json" && \
		$(CHECKOV) --quiet --compact --skip-download --framework cloudformation -f "$$expanded_dir/template.json"

fmt: $(BIN)/.installed ## Format and auto-fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# sam build needs the Lambda runtime's interpreter (python3.13) for the functions, unless Docker
# builds them (`sam build --use-container`). The layer's Makefile cross-installs arm64 wheels.
PY313 := $(shell for candidate in $$(command -v python3.13) $$HOME/.pyenv/versions/3.13*/bin/python3.13 \
	$$HOME/.local/share/uv/python/cpython-3.13*/bin/python3.13 /usr/local/bin/python3.13; do \
	"$$candidate" -c "import sys" >/dev/null 2>&1 && { echo "$$candidate"; break; }; done)
build: $(BIN)/.installed ## sam build (needs python3.13 on PATH, or Docker with USE_CONTAINER=1)
	@if [ -n "$(USE_CONTAINER)" ]; then $(BIN)/sam build --use-container; \
	elif [ -n "$(PY313)" ] && [ -x "$(PY313)" ]; then PATH="$$(dirname $(PY313)):$$PATH" $(BIN)/sam build; \
	else echo "sam build needs python3.13 (the Lambda runtime) and none was found."; \
		echo "Install one: 'pyenv install 3.13', 'uv python install 3.13', or your OS package (python3.13);"; \
		echo "or build in Docker: make build USE_CONTAINER=1"; exit 1; fi

deploy: build ## sam deploy to ENV (dev|prod) from samconfig.toml
	$(BIN)/sam deploy --config-env $(ENV)

deploy-guided: build ## First deploy: sam deploy --guided (writes your answers to samconfig.toml)
	$(BIN)/sam deploy --guided --config-env $(ENV)

bench: $(BIN)/.installed ## Benchmarks (print result tables): cold start, burst (both modes; array also in worker processes), Slack outage, 100-type catalog, 10,000-child failure storm
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/burst.py --fast-moto
	$(BIN)/python bench/burst.py --mode array --objects 10000 --fast-moto
	$(BIN)/python bench/burst.py --mode array --objects 10000 --fast-moto --processes
	$(BIN)/python bench/slack_outage.py
	$(BIN)/python bench/catalog.py --job-types 100 --processes
	$(BIN)/python bench/storm.py --children 10000 --fast-moto --processes

clean: ## Remove build output and caches (keeps .venv)
	rm -rf .aws-sam .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +

# Operations
# These talk to the deployed stack, so they need AWS credentials for its account (AWS_PROFILE or the
# usual environment variables) and REGION. STACK defaults to the samconfig.toml name for ENV.
# `$(BIN)/batch-dispatch --help` lists what else the operator command does (status, run, backfill...).
STACK ?= batch-dispatch-$(ENV)
FN ?= FailureNotifyFunction
OPERATE := $(BIN)/batch-dispatch --stack $(STACK) --region $(REGION)
.PHONY: logs dlq redrive delete

logs: $(BIN)/.installed ## A job's log stream: make logs JOB=<job id> [ATTEMPT=N] [FOLLOW=1]; a function's: make logs FN=S3SubmitFunction
	@if [ -n "$(JOB)" ]; then \
		$(OPERATE) logs $(JOB) $(if $(ATTEMPT),--attempt $(ATTEMPT)) $(if $(FOLLOW),--follow); \
	else \
		$(BIN)/sam logs --stack-name $(STACK) --name $(FN) --tail --region $(REGION); \
	fi

dlq: $(BIN)/.installed ## Show what is in the DLQs, without consuming it: make dlq [DLQ=IntakeDLQ]
	$(OPERATE) dlq show $(if $(DLQ),--queue $(DLQ))

redrive: $(BIN)/.installed ## After a fix, replay a DLQ: make redrive DLQ=FailureNotifyDLQ [DRY_RUN=1]
	@test -n "$(DLQ)" || { echo "usage: make redrive DLQ=IntakeDLQ|ScheduleDLQ|FailureNotifyDLQ|StormDLQ [DRY_RUN=1]"; exit 2; }
	$(OPERATE) dlq redrive --queue $(DLQ) $(if $(DRY_RUN),--dry-run)

delete: $(BIN)/.installed ## Delete the stack (the intake and manifest buckets are kept unless EMPTY_BUCKET=1)
	@if [ -n "$(EMPTY_BUCKET)" ]; then \
		for output in IntakeBucketName ManifestBucketName; do \
			bucket=$$($(BIN)/python scripts/stack_output.py --stack-name $(STACK) --region $(REGION) $$output) && \
			echo "emptying s3://$$bucket (every version), then deleting it" && \
			$(BIN)/python scripts/empty_bucket.py --region $(REGION) "$$bucket" --delete || exit 1; \
		done; \
	fi
	$(BIN)/sam delete --stack-name $(STACK) --region $(REGION)
