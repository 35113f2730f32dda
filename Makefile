# MLPerf Training v0.5 in modern PyTorch: the three top-level commands.
#
#   make demo [BENCH=<folder>]    tiny synthetic run of every benchmark (or one), a table and a plot
#   make test                     lint, shellcheck, the contract test and every folder's pytest suite
#   make bench [PYTHON=python3]   every folder's bench.py on whatever device is found, one table
#   make score BENCH=<folder> [RUNS=N] [CONFIG=reference|tiny] [SEEDS="1 2 3"] [ARGS="--target 0.9"]
#                                 the MLPerf v0.5 result over N seeded runs (tiny: the pass rate)
#   make gpu-check [BENCH=] [WHEELS=dir] [DATA=.demo] [DEVICE=cpu] [PYTHON=python3] [GPU_CHECK_ARGS=--quick]
#                                 every GPU path of every benchmark on one GPU: one table, .gpu-check/report.json
#   make gpu-wheels [PY=3.12] [EXCLUDE="pandas scipy"]   wheels for gpu-check on a GPU machine without network
#
# A benchmark folder is any top-level folder with a run_and_time.sh: new ones join by existing.
# `make test` also runs the tests/ of a folder still being built (landed in working steps).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BOOT_PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
TORCH_PINS := torch==2.14.1 torchvision==0.29.1
# Every folder with tests/, finished benchmark or still being built (tools/demo.py and tools/bench.py
# find the benchmark folders themselves).
TEST_FOLDERS := $(patsubst %/tests/,%,$(wildcard */tests/))
# requirements-test.txt: packages only a folder's tests need (not in its Docker image, not in gpu-wheels).
REQUIREMENTS := requirements-dev.txt $(wildcard */requirements.txt) $(wildcard */requirements-test.txt)
BENCH ?=
BENCH_ARGS ?=

# System packages and the benchmarks that need them to make tiny data or run tests.
APT_PACKAGES := shellcheck
ifneq ($(wildcard speech_recognition/.),)
APT_PACKAGES += espeak-ng sox
endif
ifneq ($(wildcard reinforcement/.),)
APT_PACKAGES += gnugo
endif

.PHONY: help demo test bench score gpu-check gpu-wheels venv system-packages lint clean

help:
	@sed -n '2,13p' Makefile | sed 's/^# \{0,1\}//'

# The venv is rebuilt when any requirements file changes; the stamp records a finished install.
$(VENV)/.installed: $(REQUIREMENTS) Makefile
	@test -x $(VPY) || $(BOOT_PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --quiet --upgrade pip
	$(VPY) -m pip install --quiet $(TORCH_PINS)
	$(VPY) -m pip install --quiet $(addprefix -r ,$(REQUIREMENTS))
	@touch $@

venv: $(VENV)/.installed

system-packages:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
	  echo "missing system packages:$$missing"; \
	  echo "  install them with: sudo apt-get install -y$$missing"; \
	  echo "  (shellcheck: make test lints shell scripts; espeak-ng, sox: speech_recognition tiny data;"; \
	  echo "   gnugo: reinforcement tiny data)"; \
	  exit 1; \
	fi

lint: venv system-packages
	$(VPY) -m ruff check .
	shellcheck .ci/run install_cuda_docker.sh $(wildcard */*.sh)

# Each folder is its own pytest invocation and rootdir: folders are independent projects that share
# module names (config, data, model, train). Exit code 5 means the folder has no tests: that is a
# broken contract, not a pass.
test: lint
	@failed=""; \
	echo "== contract and top-level tests"; \
	$(VPY) -m pytest -q -p no:cacheprovider tests || failed="$$failed top-level"; \
	for f in $(TEST_FOLDERS); do \
	  echo "== $$f"; start=$$SECONDS; \
	  rc=0; (cd $$f && ../$(VPY) -m pytest -q -p no:cacheprovider --durations=5 tests) || rc=$$?; \
	  echo "== $$f: exit $$rc after $$((SECONDS - start)) s"; \
	  if [ $$rc = 5 ]; then echo "$$f: no tests were collected"; failed="$$failed $$f"; \
	  elif [ $$rc != 0 ]; then failed="$$failed $$f"; fi; \
	done; \
	if [ -n "$$failed" ]; then echo "FAILED:$$failed"; exit 1; fi; \
	echo "all test suites passed"

demo: venv system-packages
	$(VPY) tools/demo.py $(if $(BENCH),--bench $(BENCH))

# With PYTHON= (a GPU machine with its own torch and no network) nothing is installed.
ifeq ($(origin PYTHON),undefined)
bench: venv
	$(VPY) tools/bench.py $(if $(BENCH),--bench $(BENCH)) $(BENCH_ARGS)
else
bench:
	$(PYTHON) tools/bench.py $(if $(BENCH),--bench $(BENCH)) $(BENCH_ARGS)
endif

# SEEDS, RUNS and ARGS are optional; the defaults are the v0.5 run count and seeds drawn (and recorded).
score: $(if $(BENCH),venv system-packages)
	@test -n "$(BENCH)" || { echo "usage: make score BENCH=<folder> [RUNS=N] [CONFIG=tiny] [SEEDS=...] [ARGS=...]"; exit 2; }
	$(VPY) tools/score.py --bench $(BENCH) --config $(or $(CONFIG),reference) $(if $(RUNS),--runs $(RUNS)) \
	  $(if $(SEEDS),--seeds "$(SEEDS)") $(if $(ARGS),-- $(ARGS))

# A GPU machine brings its own torch (PYTHON, default python3) and maybe no network: nothing is installed
# but the WHEELS folder, into .gpu-check/site. DEVICE=cpu runs the same harness here (the CI test does).
gpu-check:
	$(or $(PYTHON),python3) tools/gpu_check.py $(foreach b,$(BENCH),--bench $(b)) $(if $(WHEELS),--wheels $(WHEELS)) \
	  $(if $(DATA),--data-root $(DATA)) $(if $(DEVICE),--device $(DEVICE)) $(GPU_CHECK_ARGS)

gpu-wheels: venv
	$(VPY) tools/gpu_wheels.py --python-version $(or $(PY),3.12) --out $(or $(WHEELS),.gpu-wheels) \
	  $(if $(EXCLUDE),--exclude $(EXCLUDE))

clean:
	rm -rf .demo .score .gpu-check
