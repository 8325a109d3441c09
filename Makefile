# Everything a newcomer needs: `make run` and `make test` on a fresh machine
# with Python 3.11+ (and Java 17 for the Spark engine and the whole suite).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAKE   ?= lake

.PHONY: install install-dev run java-check browser test test-fast generate bench clean

# `make run` needs only DuckDB; the tests, the Spark engine and the code generator need the dev extras.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# The sample lake is generated once, in $(LAKE); `stedi run` never makes up data on its own.
run: install
	@[ -d $(LAKE) ] || $(BIN)/stedi generate --lake $(LAKE)
	$(BIN)/stedi run --lake $(LAKE)

java-check:
	@command -v java >/dev/null 2>&1 || [ -n "$$JAVA_HOME" ] || { \
	  echo "Java 17 is needed for the Spark engine tests: install it (apt-get install openjdk-17-jre-headless) or set JAVA_HOME"; exit 1; }

# The report's tests render pages in headless Chromium, a Debian package (installed when missing, as root).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  [ "$$(id -u)" = 0 ] || { echo "headless Chromium is needed for the report tests: apt-get install chromium"; exit 1; }; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# The whole suite: Spark, the SAM toolchain, the npm validator and Chromium included. CI runs this.
test: install-dev java-check aws-tools browser
	$(BIN)/ruff check .
	$(BIN)/python -m stedi.codegen --check
	$(BIN)/pytest

# Everything that needs neither Java, npm, the SAM CLI nor a browser: under a minute.
test-fast: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto --dist worksteal -m "not spark and not aws_tools and not browser"

# Rewrite what is derived from stedi/catalogue.py and stedi/sql/spark/: the landing SQL, the DuckDB
# translations, the Glue job script and the state machine. Commit the result; `make test` checks it.
generate: install-dev
	$(BIN)/python -m stedi.codegen

clean:
	rm -rf $(VENV) $(LAKE) .pytest_cache

# Wall time and peak memory of `stedi run` (both engines) and of the bare DuckDB script
# (docs/benchmarks.md). Generated lakes go to $BENCH_DIR (default /tmp/stedi-bench).
# A quick subset: make bench BENCH_ARGS="--lakes starter,1 --engines duckdb,bare_floor --runs 3"
BENCH_ARGS ?=
bench: install-dev
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

# Called by `sam build` (template.yaml: StediLayer, BuildMethod makefile) in
# this directory: the layer gets Powertools and the stedi modules the Lambda
# handlers import, which sam build would not copy on its own.
build-StediLayer:
	$(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)/python" --implementation cp --python-version 3.11 \
	  --platform manylinux2014_x86_64 --only-binary=:all: --no-deps -r functions/layer/requirements.txt
	mkdir -p "$(ARTIFACTS_DIR)/python/stedi/aws"
	cp stedi/__init__.py stedi/accounting.py stedi/catalogue.py stedi/checks.py stedi/lake.py "$(ARTIFACTS_DIR)/python/stedi/"
	cp stedi/aws/*.py "$(ARTIFACTS_DIR)/python/stedi/aws/"

clean-aws:
	rm -rf $(SAM_VENV) node_modules .aws-sam

clean: clean-aws

# Region and credentials come from your AWS configuration; defaults in samconfig.toml.
deploy: $(SAM_VENV)/.installed  # npm is for the tests only
	SAM_CLI_TELEMETRY=0 $(SAM) build
	SAM_CLI_TELEMETRY=0 $(SAM) deploy
