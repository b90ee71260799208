# Two entry points for a new machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: test demo bench soak lint typecheck unit deps clean screenshot

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $(STAMP)

deps: $(STAMP)
	@command -v minisign >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq minisign; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq minisign; fi; }
	@# ssh-keygen makes the OpenSSH keys of the interop tests (tests/test_ssh_keys.py).
	@command -v ssh-keygen >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq openssh-client; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq openssh-client; fi; }
	@# TUF expiry is tested at shifted clocks under libfaketime (tests/test_tuf_refresh_e2e.py).
	@command -v faketime >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq faketime; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq faketime; fi; }
	@# prlimit bounds the memory of the git programs that read strangers' data (store/gitlimits.py).
	@command -v prlimit >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq util-linux; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq util-linux; fi; }
	@# The web pages are tested in a real headless Chromium (tests/test_web.py).
	@{ command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium chromium-driver; \
	  else sudo apt-get update -qq && sudo apt-get install -y -qq chromium chromium-driver; fi; }

lint: deps
	$(BIN)/ruff check asfaload cli tests bench examples
	$(BIN)/ruff format --check asfaload cli tests bench examples

typecheck: deps
	$(BIN)/mypy asfaload cli

unit: deps
	$(BIN)/pytest -p no:cacheprovider -n 2 --dist loadfile --durations=15 tests

test: lint typecheck unit

demo: deps
	$(BIN)/python examples/demo.py
	$(BIN)/python examples/demo_tuf.py

# The project page's screenshot in the docs, made from the demo data in headless Chromium.
screenshot: deps
	$(BIN)/python examples/webpage.py docs/screenshot-project.png

bench: deps
	$(BIN)/python bench/run.py

# The reliability suite's long runs (not part of `make test`): 64 clients under 20 whole-server
# SIGKILLs, 1,000 fuzzing examples per API operation and parser, the attack corpus; schemathesis
# at that size too. Figures go to BENCHMARKS.md (section bench_attacks). Override any setting,
# e.g. `make soak ASFALOAD_SOAK_KILLS=5`.
ASFALOAD_SOAK_CLIENTS ?= 64
ASFALOAD_SOAK_KILLS ?= 20
ASFALOAD_SOAK_RELEASES ?= 200
ASFALOAD_SOAK_EXAMPLES ?= 1000
ASFALOAD_SOAK_GC_RELEASES ?= 64
SOAK_ENV = ASFALOAD_SOAK_CLIENTS=$(ASFALOAD_SOAK_CLIENTS) ASFALOAD_SOAK_KILLS=$(ASFALOAD_SOAK_KILLS) \
	ASFALOAD_SOAK_RELEASES=$(ASFALOAD_SOAK_RELEASES) ASFALOAD_SOAK_EXAMPLES=$(ASFALOAD_SOAK_EXAMPLES) \
	ASFALOAD_SOAK_GC_RELEASES=$(ASFALOAD_SOAK_GC_RELEASES)

soak: deps
	$(SOAK_ENV) $(BIN)/pytest -p no:cacheprovider -q tests/test_schemathesis.py
	$(SOAK_ENV) $(BIN)/python bench/run.py bench_attacks

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
