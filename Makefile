# inferwatch — the two commands:  make demo   (run the main job)   make test   (run the whole suite)
# Both set everything up on a fresh machine: a virtualenv with the package, the Kafka jars,
# Prometheus and Alertmanager (deploy/install.sh).

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: setup demo test bench clean help
.DEFAULT_GOAL := help

help:
	@echo "make demo    set up, start the local Kafka and run the built-in scenario"
	@echo "make test    set up and run the whole test suite (unit + real Kafka/Prometheus/Alertmanager)"
	@echo "make up | down | status    the local stack (Kafka :9092, Alertmanager :9093, Prometheus :9090)"
	@echo "make bench   the decoding benchmark, JSON into bench/results/ (the others: bench/README.md)"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	rm -f $(VENV)/.installed-*
	touch $@

setup: $(STAMP) install

include deploy/stack.mk

demo: setup
	$(VENV)/bin/inferwatch demo

test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

bench: setup
	mkdir -p bench/results
	$(PY) -m bench.decode --json bench/results/decode.json

clean:
	rm -rf $(VENV) .stack deploy/kafka/lib
