# Local stack targets; the top-level Makefile includes this file and creates .venv.
#   make install   fetch Kafka jars (deploy/kafka/lib) and apt-install Prometheus/Alertmanager
#   make up        start Kafka :9092, Alertmanager :9093 (+ webhook recorder :9095), Prometheus :9090
#   make down      stop them
#   make status    running / crashed / stopped (non-zero exit unless all run)
# STACK_ARGS passes extra flags to `up`, e.g. make up STACK_ARGS="--kafka-port 29092".

STACK_PYTHON ?= .venv/bin/python
STACK_ARGS ?=

.PHONY: install up down status

install:
	bash deploy/install.sh

up: setup
	$(STACK_PYTHON) -m streams.localstack up $(STACK_ARGS)

down:
	$(STACK_PYTHON) -m streams.localstack down

status:
	$(STACK_PYTHON) -m streams.localstack status
