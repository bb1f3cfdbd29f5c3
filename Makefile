# labelzoo: `make run BACKEND=template` serves a backend on :9090, `make test` runs the tests.
# Both install what they need first (a .venv pinned by constraints.txt, and redis-server for the tests).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKEND ?= template
PIP := $(BIN)/python -m pip
PYTEST_ARGS ?=

.PHONY: install system-deps ls-venv test run lint bench up-yolo up-spacy up-whisper up-sam clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'
	$(PIP) install --quiet --disable-pip-version-check -c constraints.txt --no-deps ultralytics
	touch $@

# Programs the tests use: redis-server (RQ queue tests), ffmpeg (audio decoding), espeak-ng
# (synthesised speech for the Whisper tests).
# Each Debian package installs a program of the same name.
SYSTEM_PACKAGES := redis-server ffmpeg espeak-ng

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  echo "installing:$$missing"; \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends $$missing; fi

# An unmodified Label Studio in its own virtualenv, for the end-to-end tests in tests/e2e (pinned: the
# tests check what this version stores and calls). The stamp names the version, so a new pin reinstalls.
LABEL_STUDIO_VERSION := 1.23.2
LS_VENV ?= .ls-venv

ls-venv: $(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION)

$(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION):
	test -x $(LS_VENV)/bin/python || $(PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check label-studio==$(LABEL_STUDIO_VERSION)
	rm -f $(LS_VENV)/.installed-*
	touch $@

test: install system-deps ls-venv
	$(BIN)/python -m pytest $(PYTEST_ARGS)

run: install
	$(BIN)/labelzoo serve $(BACKEND) --host 0.0.0.0 --port 9090

lint: install
	$(BIN)/ruff check shared backends tests

bench: install
	$(BIN)/python -m benchmarks

# Quickstarts: Label Studio + the backend + a one-shot step that creates a demo project and connects them.
up-sam: export BOOTSTRAP_FLAGS := --interactive
# GPU=1 adds the backend's GPU variant (compose/<backend>.gpu.yml: CUDA torch, DEVICE=cuda, the GPUs).
up-yolo up-spacy up-whisper up-sam: up-%:
	BACKEND=$* docker compose -f compose/label-studio.yml -f compose/$*.yml \
	  $(if $(GPU),-f compose/$*.gpu.yml) up --build

clean:
	rm -rf $(VENV) $(LS_VENV) .pytest_cache .ruff_cache build *.egg-info
