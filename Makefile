# Everything a newcomer needs: `make run` and `make test` on a fresh machine
# with Python 3.11+ and Java 17 (Java only for the Spark engine and its tests).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAKE   ?= lake

.PHONY: install run java-check test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/stedi run --lake $(LAKE)

java-check:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
	  echo "Java 17 is needed for the Spark engine tests: install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"; exit 1; }

test: install java-check
	$(BIN)/ruff check .
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(LAKE) .pytest_cache

# Wall time and peak memory of `stedi run` (both engines) and of the floor script
# (docs/benchmarks.md). Generated lakes go to $BENCH_DIR (default /tmp/stedi-bench).
# A quick subset: make bench BENCH_ARGS="--lakes starter,1 --engines duckdb,floor --runs 3"
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/bench.py $(BENCH_ARGS)

# ---------------------------------------------------------------- AWS (template.yaml, docs/aws.md)
# aws-sam-cli pins boto3 exactly, so it and cfn-lint get their own venv.
SAM_VENV := .venv-sam
SAM      := $(SAM_VENV)/bin/sam

.PHONY: aws-tools deploy build-StediLayer clean-aws

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet 'aws-sam-cli>=1.170' 'cfn-lint>=1.58'
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

aws-tools: $(SAM_VENV)/.installed node_modules/.installed

# The AWS tests (tests/aws) lint, build and package with these tools.
test: aws-tools

# Called by `sam build` (template.yaml: StediLayer, BuildMethod makefile) in
# this directory: the layer gets Powertools and the stedi modules the Lambda
# handlers import, which sam build would not copy on its own.
build-StediLayer:
	$(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)/python" --implementation cp --python-version 3.11 \
	  --platform manylinux2014_x86_64 --only-binary=:all: --no-deps -r functions/layer/requirements.txt
	mkdir -p "$(ARTIFACTS_DIR)/python/stedi/aws"
	cp stedi/__init__.py stedi/stages.py stedi/checks.py stedi/lake.py "$(ARTIFACTS_DIR)/python/stedi/"
	cp stedi/aws/*.py "$(ARTIFACTS_DIR)/python/stedi/aws/"

clean-aws:
	rm -rf $(SAM_VENV) node_modules .aws-sam

clean: clean-aws

# Region and credentials come from your AWS configuration; defaults in samconfig.toml.
deploy: aws-tools
	SAM_CLI_TELEMETRY=0 $(SAM) build
	SAM_CLI_TELEMETRY=0 $(SAM) deploy
