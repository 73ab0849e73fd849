# cloudhop.k8s_migration - the whole set-up on a fresh Debian/Ubuntu machine is `make demo`
# or `make test` (both run `make setup` first). Run as root: the lab uses network namespaces.

SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
export PATH := $(CURDIR)/$(BIN):$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PYTHONPATH := $(CURDIR)/tests/lab
COLL_LINK := .collections/ansible_collections/cloudhop/k8s_migration
SANITY_TREE := .cache/sanity/ansible_collections/cloudhop/k8s_migration
APT_PACKAGES := openvpn openssh-server openssh-client iproute2 iputils-ping haproxy bind9 \
	bind9-dnsutils wireguard-tools wireguard-go rsync procps python3-venv shellcheck nftables iptables tcpdump iperf3
STAMP := $(VENV)/.installed

.PHONY: help setup test lint sanity unit integration demo lab-up lab-down lab-status \
	bench bench-quick lab-probe lab-probe-stop changelog clean molecule

help:
	@echo "make demo   - bring the lab up, run the demo, bring it down"
	@echo "make test   - setup + ansible-lint + ansible-test sanity + unit + lab integration"
	@echo "make setup  - install everything (apt, .venv, collection link); idempotent"
	@echo "make bench  - lab-up time and API latency (bench/results.json, bench/results.md)"
	@echo "make molecule - the molecule/default scenario (the whole migration in the lab)"
	@echo "make lab-up / lab-down / lab-status"

setup: $(STAMP) $(COLL_LINK) ~/.ansible/test/cache/get_pip_24_2.py
	@scripts/apt-install.sh $(APT_PACKAGES)

$(STAMP): requirements.txt requirements-dev.txt requirements-ansible.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-ansible.txt
	$(PY) -m pip install -q -r requirements-dev.txt
	@touch $@

$(COLL_LINK):
	@mkdir -p $(dir $@)
	@ln -sfn ../../.. $@

# ansible-test bootstraps pip in each sanity venv with a script from a host we cannot reach;
# this stand-in uses ensurepip (in a subprocess) and then pip (tooling-facts.md).
~/.ansible/test/cache/get_pip_24_2.py: scripts/get_pip_standin.py
	@mkdir -p $(dir $@)
	@cp $< $@

lint: setup
	$(BIN)/ansible-lint --profile production
	$(BIN)/antsibull-changelog lint

sanity: setup
	@rm -rf .cache/sanity && mkdir -p $(SANITY_TREE)
	@git ls-files -z --cached --others --exclude-standard | \
		rsync -a --from0 --files-from=- ./ $(SANITY_TREE)/
	@# dependency collections next to ours, so the import and validate-modules tests resolve
	@# kubernetes.core's module_utils and doc fragments
	@for c in kubernetes/core community/mongodb; do mkdir -p .cache/sanity/ansible_collections/$$c && \
		rsync -a --exclude tests $(VENV)/lib/python3.11/site-packages/ansible_collections/$$c/ \
		.cache/sanity/ansible_collections/$$c/; done
	@cd $(SANITY_TREE) && git init -q && git add -A && \
		$(CURDIR)/$(BIN)/ansible-test sanity --python 3.11 --color no

unit: setup
	$(BIN)/pytest -q tests/unit tests/lab/tests/unit

# three lanes at once, each with a lab of its own (tests/lab/integration-lanes): the in-lab tests
# (inside clh2-ctl), the lifecycle tests, the rollback test and the move's preflight; the AWS,
# GCP and three-cluster migrations and the move end to end (the link it builds); the move killed
# in every phase and rolled back (migration tests run playbooks against fresh labs)
integration: setup
	tests/lab/integration-lanes

# molecule/default: the whole migration with Molecule's delegated driver (create = lab up,
# converge = migrate.yml, idempotence, verify, destroy = lab down); CLOUDHOP_MOLECULE_CLOUD and
# CLOUDHOP_MOLECULE_DNS pick the target (make test runs it to GCP with Cloud DNS, as a
# migration test)
molecule: setup
	$(BIN)/molecule test

# make test: lint, sanity, unit tests and the integration lanes (benchmarks: make bench)
test: setup lint sanity unit
	tests/lab/integration-lanes

# benchmarks: figures go here, never into timed tests (results in bench/results.json + .md)
bench: setup
	$(PY) bench/run.py

bench-quick: setup
	BENCH_QUICK=1 BENCH_ROUNDS=1 $(PY) bench/run.py

# the whole migration in the lab under live traffic (CLOUDHOP_DEMO_CLOUD=gcp for GCP)
demo: setup
	@scripts/demo.sh

lab-up: setup
	@$(PY) -m cloudhop_lab up

lab-down:
	@if [ -x $(PY) ]; then $(PY) -m cloudhop_lab down; else \
		for n in $$(ip netns list | awk '/^clh-/{print $$1}'); do ip netns delete $$n; done; fi

lab-status:
	@$(PY) -m cloudhop_lab status

# traffic probe from the internet: start it, then `make lab-probe-stop` prints the summary
lab-probe:
	@$(PY) -m cloudhop_lab probe start

lab-probe-stop:
	@$(PY) -m cloudhop_lab probe stop

changelog: setup
	$(BIN)/antsibull-changelog lint

clean: lab-down
	rm -rf .cache .collections tests/output
