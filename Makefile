# Everything a newcomer needs: `make run` and `make test` on a fresh machine
# with Python 3.11+ and Java 17 (Java only for the Spark engine and its tests).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
LAKE   ?= lake

.PHONY: install run test bench clean

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
	$(BIN)/pytest

clean:
	rm -rf $(VENV) $(LAKE) .pytest_cache
