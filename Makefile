# hosting.migration: the two commands for a newcomer are `make demo` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt constraints.txt | sha256sum | cut -c1-12)
COLLECTION_LINK := .collections/ansible_collections/hosting/migration
PLAYBOOK := $(BIN)/ansible-playbook
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help setup host venv images lab-repo lab-up lab-down lab-status demo test lint sanity unit molecule bench clean

help:
	@echo "make demo        set everything up, bring the lab up and run the main job"
	@echo "make test        set everything up and run the whole test suite"
	@echo "make lab-up      bring the lab up (LAB_ACCOUNTS=N, LAB_FILES_MB=N, LAB_DB_MB=N)"
	@echo "make lab-down    remove the lab's servers and network"
	@echo "make lab-status  what the lab is doing"
	@echo "make lab-repo    build the lab's provider package repository (lab/repo/serve.sh serves it)"
	@echo "make bench       run the benchmarks (BENCH=name for one; results in bench/results/)"

setup: host venv

host:
	@lab/host/setup.sh

venv: $(STAMP) $(COLLECTION_LINK)

$(STAMP): requirements.txt constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "installing the controller's Python packages into $(VENV)"
	@$(BIN)/pip install --quiet --disable-pip-version-check -r requirements.txt -c constraints.txt
	@rm -f $(VENV)/.installed-* && touch $@

$(COLLECTION_LINK):
	@mkdir -p $(dir $@) && ln -sfn ../../.. $@

images: setup
	@lab/images/build.sh 2023 & p1=$$!; lab/images/build.sh 2025 & p2=$$!; wait $$p1 && wait $$p2

lab-repo: images
	@lab/repo/build.sh

lab-up: images
	@lab/bin/lab-up.sh

lab-down: setup
	@$(PLAYBOOK) lab/playbooks/down.yml

lab-status: venv
	@lab/bin/status.sh

demo: images
	@lab/bin/demo.sh

test: setup images lab-repo
	@tests/run.sh

lint: venv
	@tests/run.sh lint

sanity: venv
	@tests/run.sh sanity

unit: venv
	@tests/run.sh unit

molecule: setup images
	@tests/run.sh molecule

bench: lab-up
	@$(BIN)/python bench/run.py $(BENCH)

clean:
	rm -rf $(VENV) .collections .pytest_cache tests/output
