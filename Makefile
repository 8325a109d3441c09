# Everything a newcomer needs: `make run` and `make test` on a fresh machine
# with Python 3.11+ (and Java 17 for the Spark engine and the whole suite).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAKE   ?= lake

.PHONY: install install-dev lock run java-check browser test test-fast generate bench mutants clean

# The exact versions the suite last passed with, as package-lock.json is for npm: every install keeps to
# them, so a fresh machine gets what CI tested, not whatever was released since (`make lock` renews them).
CONSTRAINTS     := constraints.txt
SAM_CONSTRAINTS := constraints-sam.txt

# `make run` needs only DuckDB; the tests, the Spark engine and the code generator need the dev extras.
$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e .
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed pyproject.toml $(CONSTRAINTS)
	$(BIN)/pip install --quiet -c $(CONSTRAINTS) -e '.[dev]'
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

# Resolve both tool sets afresh, each in a scratch venv, and write down what came: then run `make test`
# before committing the two files (a new release can break the suite, as botocore's did: see pyproject.toml).
LOCK_HEADER := \# Written by make lock: the versions every install keeps to (see the Makefile).
lock:
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet -e '.[dev]'
	{ echo '$(LOCK_HEADER)'; .venv-lock/bin/pip freeze --exclude-editable; } > $(CONSTRAINTS)
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install --quiet $(SAM_TOOLS)
	{ echo '$(LOCK_HEADER)'; .venv-lock/bin/pip freeze; } > $(SAM_CONSTRAINTS)
	rm -rf .venv-lock

# The sample lake is generated once, in $(LAKE); `stedi run` never makes up data on its own.
run: install
	@[ -d $(LAKE) ] || $(BIN)/stedi generate --lake $(LAKE)
	@$(BIN)/stedi run --lake $(LAKE)

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

# Everything that needs neither Java, npm, the SAM CLI nor a browser, on two cores: 44 to 56 s in four
# runs on a fast day of this machine, 48 to 93 s (median 62 s) in 13 runs on slower ones, whose CPU
# seconds spread as much; a third of it the moto-executed state machine runs.
test-fast: install-dev
	$(BIN)/ruff check .
	$(BIN)/pytest -n auto --dist worksteal -m "not spark and not aws_tools and not browser"

# Rewrite what is derived from stedi/catalogue.py and stedi/sql/spark/: the landing SQL, the DuckDB
# translations, the Glue job script and the state machine. Commit the result; `make test` checks it.
generate: install-dev
	$(BIN)/python -m stedi.codegen

# Break one rule at a time in a scratch copy and run the tests that answer for it (docs/mutants.md).
# Not part of `make test`: about 11 minutes. Some of them: make mutants MUTANTS_ARGS="--only ct-tie-consent-wins"
MUTANTS_ARGS ?=
mutants: install-dev
	$(BIN)/python mutants/run_mutants.py $(MUTANTS_ARGS)

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

# The Lambda functions, built by `make build-<LogicalId>` (template.yaml: BuildMethod makefile).
LAMBDA_FUNCTIONS := ValidateRunFunction TakeRunLockFunction ReleaseRunLockFunction CheckStageFunction \
  PublishRunFunction RecordRunFunction DescribeFailureFunction StartRunFunction VerifyCrawlFunction
# The stack `make deploy` and `make smoke` work on; two stacks live side by side: STACK=stedi-dev, STACK=stedi-prod.
STACK ?= stedi-lakehouse
PREFLIGHT_ARGS ?=

.PHONY: aws-tools deploy smoke build-StediLayer $(addprefix build-,$(LAMBDA_FUNCTIONS)) clean-aws

# Any Python 3.9 or later does: nothing is built with the Lambda runtime's own python3.11.
SAM_TOOLS := 'aws-sam-cli>=1.170' 'cfn-lint>=1.58'
$(SAM_VENV)/.installed: $(SAM_CONSTRAINTS)
	@$(PYTHON) -c 'import sys; sys.exit(None if sys.version_info >= (3, 9) else "the SAM tools need Python 3.9 or later (any version: the Lambda code is built for 3.11 by pip); $(PYTHON) is " + sys.version.split()[0])'
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet -c $(SAM_CONSTRAINTS) $(SAM_TOOLS)
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

aws-tools: $(SAM_VENV)/.installed node_modules/.installed

# Called by `sam build` (template.yaml: StediLayer, BuildMethod makefile) in
# this directory: the layer gets Powertools and the stedi modules the Lambda
# handlers import, which sam build would not copy on its own; Powertools at the version the tests ran.
build-StediLayer:
	$(PYTHON) -m pip install --quiet --target "$(ARTIFACTS_DIR)/python" --implementation cp --python-version 3.11 \
	  --platform manylinux2014_x86_64 --only-binary=:all: --no-deps -r functions/layer/requirements.txt -c $(CONSTRAINTS)
	mkdir -p "$(ARTIFACTS_DIR)/python/stedi/aws"
	cp stedi/__init__.py stedi/accounting.py stedi/catalogue.py stedi/checks.py stedi/lake.py stedi/runner.py \
	  "$(ARTIFACTS_DIR)/python/stedi/"
	cp stedi/aws/*.py "$(ARTIFACTS_DIR)/python/stedi/aws/"

# Called by `sam build` for each function: the handlers alone, everything else is in the layer.
# sam's own Python builder would want the runtime's exact python3.11 on PATH; this wants none.
$(addprefix build-,$(LAMBDA_FUNCTIONS)):
	mkdir -p "$(ARTIFACTS_DIR)"
	cp functions/handlers/*.py "$(ARTIFACTS_DIR)/"

clean-aws:
	rm -rf $(SAM_VENV) node_modules .aws-sam

clean: clean-aws

# Region and credentials come from your AWS configuration; defaults in samconfig.toml. Preflight stops
# before anything is made if the stack name, the credentials or Lake Formation would fail it (docs/aws.md).
deploy: $(SAM_VENV)/.installed  # npm is for the tests only
	PYTHONPATH=. $(SAM_VENV)/bin/python -m stedi.aws.preflight --stack $(STACK) $(PREFLIGHT_ARGS)
	SAM_CLI_TELEMETRY=0 $(SAM) build
	SAM_CLI_TELEMETRY=0 $(SAM) deploy --stack-name $(STACK)

# Proof on the real account that the deployed stack works (docs/aws.md, "First deploy: prove it"). ~30 min.
smoke: install-dev
	STEDI_STACK=$(STACK) $(BIN)/pytest tests/integration/test_smoke.py -p no:xdist -v
