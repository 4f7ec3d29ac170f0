# prodready.deploy: `make demo` runs the main job on the local lab, `make test` runs every
# test tier. Both set the machine up first and are fast when run again.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

VENV := $(CURDIR)/.venv
export PATH := $(VENV)/bin:$(PATH)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
# The lab starts dockerd and PostgreSQL under their own users: root, or sudo for the rest.
SUDO := $(shell [ "$$(id -u)" -eq 0 ] || echo sudo -E)
LAB := $(SUDO) tests/lab/lab
PYTEST := $(VENV)/bin/python -m pytest

.PHONY: help setup lab lab-down demo test lint ruff yamllint ansible-lint sanity unit \
	integration e2e molecule build bench constraints clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-13s %s\n", $$1, $$2}'

setup: ## install Debian packages and the Python toolchain (cached outside the repo)
	@scripts/setup

lab: setup ## start the lab's services (PostgreSQL, Redis, Docker, registry, CA)
	@$(LAB) up

lab-down: ## stop the lab's services
	@$(LAB) down

demo: lab ## set up, start the lab, release the reference app with deploy.yml, print the report
	@$(LAB) app-context >/dev/null; eval "$$($(LAB) env)"; report="$$PRODREADY_LAB_DIR/reports/demo"; \
	  export ANSIBLE_CALLBACKS_ENABLED=prodready.deploy.release_report PRODREADY_REPORT_DIR="$$report"; \
	  status=0; ansible-playbook deploy.yml -i inventories/local || status=$$?; \
	  echo; cat "$$report/release-report.md" 2>/dev/null || echo "demo: no report in $$report"; \
	  exit $$status

test: lab ## set up, start the lab, run every test tier (non-zero on any failure)
	@$(MAKE) -k lint unit integration e2e molecule

lint: ruff yamllint ansible-lint sanity ## every static check

ruff:
	@echo "==> ruff"; ruff check .

yamllint:
	@echo "==> yamllint"; yamllint --strict .

ansible-lint:
	@echo "==> ansible-lint (profile production)"; ansible-lint

sanity:
	@echo "==> ansible-test sanity"; scripts/sanity

unit: ## unit tests (no services)
	@echo "==> unit tests"; $(PYTEST) tests/unit

integration: ## tests against the lab's real services
	@echo "==> integration tests"; $(PYTEST) tests/integration

e2e: ## deploy.yml end to end on the lab: the release, its rollback and the fault matrix
	@echo "==> end-to-end tests"; $(PYTEST) tests/e2e

molecule: ## Molecule scenarios of the roles, against the lab
	@echo "==> molecule"; eval "$$($(LAB) env)"; molecule test --all

build: setup ## build the collection tarball into build/
	@ansible-galaxy collection build --force --output-path build/

bench: setup ## run every benchmark in bench/ (each prints its ratio against a peer)
	@shopt -s nullglob; benches=(bench/*); [ $${#benches[@]} -gt 0 ] || echo "no benchmarks yet"; \
	 rc=0; for b in "$${benches[@]}"; do [ -x "$$b" ] && { "$$b" || rc=1; }; done; exit $$rc

constraints: ## regenerate requirements/constraints.txt from requirements/dev.in
	@scripts/constraints

clean: ## remove build outputs from the tree (the lab and caches stay)
	@rm -rf build tests/output .pytest_cache .ruff_cache
