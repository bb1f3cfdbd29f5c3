# labelzoo: `make run BACKEND=template` serves a backend on :9090, `make test` runs the tests.
# Both install what they need first: `run` a virtualenv with only that backend's needs (.venv-<backend>),
# `test` the whole development stack (.venv) plus Label Studio and the programs the tests use. Both are
# pinned by constraints.txt.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
BACKEND ?= template
HOST ?= 0.0.0.0
PORT ?= 9090
PIP := $(BIN)/python -m pip
PIP_FLAGS := --quiet --disable-pip-version-check -c constraints.txt
PYTEST_ARGS ?=

.PHONY: install system-deps ls-venv test run lint bench loadtest soak image image-base image-torch podman test-images \
  up-yolo up-spacy up-whisper up-sam up-sam2 up-ocr up-gliner up-grounding clean

install: $(VENV)/.installed

# SAM 2 ships only as an sdist whose build imports torch: it is built against the torch the virtualenv already
# has (--no-build-isolation; else pip would install a second torch into a throwaway build environment), without
# its optional CUDA extension. $(call install_sam2,<python>) installs it where torch is.
install_sam2 = SAM2_BUILD_CUDA=0 $(1) -m pip install $(PIP_FLAGS) --no-build-isolation sam2

$(VENV)/.installed: pyproject.toml setup.py constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(PIP) install $(PIP_FLAGS) torch
	$(call install_sam2,$(BIN)/python)
	$(PIP) install $(PIP_FLAGS) -e '.[dev]'
	touch $@

# One backend on its own: the core and the backend's extra (yolo and whisper also install their
# requirements-nodeps.txt without dependencies, as their Dockerfiles do). For the torch backends, torch
# comes from TORCH_INDEX_URL first: PyTorch's CPU builds on a machine without an NVIDIA GPU (nvidia-smi),
# when that index can be reached; otherwise (or with TORCH_INDEX_URL= or GPU=1) PyPI's, which are CUDA builds.
RUN_VENV := .venv-$(BACKEND)
NODEPS := $(wildcard backends/$(BACKEND)/requirements-nodeps.txt)
TORCH_BACKENDS := yolo whisper sam sam2 gliner grounding
TORCH_INDEX_URL ?= $(if $(GPU)$(shell command -v nvidia-smi),,https://download.pytorch.org/whl/cpu)

$(RUN_VENV)/.installed: pyproject.toml setup.py constraints.txt
	test -x $(RUN_VENV)/bin/python || $(PYTHON) -m venv $(RUN_VENV)
	$(if $(and $(TORCH_INDEX_URL),$(filter $(BACKEND),$(TORCH_BACKENDS))),$(RUN_VENV)/bin/python -m pip install \
	  $(PIP_FLAGS) --timeout 15 --retries 1 --index-url $(TORCH_INDEX_URL) torch \
	  $(if $(filter whisper,$(BACKEND)),,torchvision) || echo "$(TORCH_INDEX_URL) cannot be reached: torch from PyPI")
	$(if $(filter sam2,$(BACKEND)),$(RUN_VENV)/bin/python -m pip install $(PIP_FLAGS) torch torchvision \
	  && $(call install_sam2,$(RUN_VENV)/bin/python))
	$(RUN_VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[$(BACKEND)]'
	$(if $(NODEPS),$(RUN_VENV)/bin/python -m pip install $(PIP_FLAGS) --no-deps -r $(NODEPS))
	touch $@

# Programs the tests use: redis-server (RQ queue tests), ffmpeg (audio decoding), espeak-ng
# (synthesised speech for the Whisper tests).
# Each Debian package installs a program of the same name.
SYSTEM_PACKAGES := redis-server ffmpeg espeak-ng
# Data the tests use, Debian packages checked by name: Tesseract's English model (the ocr backend; tesserocr
# brings the library) and the fonts the OCR tests render text in.
SYSTEM_DATA_PACKAGES := tesseract-ocr-eng fonts-dejavu-core fonts-liberation2

system-deps:
	@missing=""; for p in $(SYSTEM_PACKAGES); do command -v $$p >/dev/null || missing="$$missing $$p"; done; \
	for p in $(SYSTEM_DATA_PACKAGES); do dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' \
	  || missing="$$missing $$p"; done; \
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

run: $(RUN_VENV)/.installed
	$(RUN_VENV)/bin/labelzoo serve $(BACKEND) --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check shared backends tests

bench: install
	$(BIN)/python -m benchmarks

# A CPU-bound backend (YOLO, local model) under 16 clients on loopback: cheap-route latency, 503s, worker RSS.
loadtest: install
	$(BIN)/python -m benchmarks.load --minutes 2

soak: install
	$(BIN)/python -m benchmarks.load --minutes 10

# Images: `make image BACKEND=<name>` builds the base the backend's image starts from (backends/base.Dockerfile:
# labelzoo-base:local, or for a Dockerfile FROM ${TORCH_IMAGE} the same base with PyTorch, labelzoo-torch:local),
# then labelzoo-<name>, with ENGINE: podman where it is installed, else docker. GPU=1 takes PyPI's CUDA torch
# instead of PyTorch's CPU wheels (labelzoo-torch:gpu, labelzoo-<name>:gpu). Podman needs the Docker image
# format (it drops HEALTHCHECK otherwise) and here the host's network (its bridge needs iptables, which
# machines like CI's lack).
ENGINE ?= $(if $(shell command -v podman),podman,docker)
ENGINE_FLAGS := $(if $(filter podman,$(notdir $(ENGINE))),--format docker --network host)
TORCH_IMAGE := labelzoo-torch:$(if $(GPU),gpu,local)
IMAGE_TORCH_INDEX ?= $(if $(GPU),https://pypi.org/simple,https://download.pytorch.org/whl/cpu)
base_image = image-$(if $(shell grep -ls TORCH_IMAGE backends/$(1)/Dockerfile),torch,base)

image-base:
	$(ENGINE) build $(ENGINE_FLAGS) -f backends/base.Dockerfile -t labelzoo-base:local .

image-torch:
	$(ENGINE) build $(ENGINE_FLAGS) -f backends/base.Dockerfile --build-arg TORCH_INDEX_URL=$(IMAGE_TORCH_INDEX) \
	  -t $(TORCH_IMAGE) .

IMAGE_BASE := $(call base_image,$(BACKEND))

image: $(IMAGE_BASE)
	$(ENGINE) build $(ENGINE_FLAGS) -f backends/$(BACKEND)/Dockerfile \
	  $(if $(filter image-torch,$(IMAGE_BASE)),--build-arg TORCH_IMAGE=$(TORCH_IMAGE)) -t labelzoo-$(BACKEND)$(if $(GPU),:gpu) .

# Podman (as root on Debian) and python:3.11-slim for it, pulled or, where no registry can be reached, a
# local stand-in (scripts/containers/). The image tests (tests/images) run wherever podman is installed:
# `make test-images` runs only them; CI runs `make podman` before `make test`.
podman:
	scripts/containers/podman-setup.sh
	scripts/containers/python-image.sh

test-images: install ls-venv podman
	$(BIN)/python -m pytest tests/images tests/e2e/test_bootstrap_image_e2e.py $(PYTEST_ARGS)

# Quickstarts: Label Studio + the backend + a one-shot step that creates a demo project and connects them.
# Compose reads .env for the files' ${...} defaults only with --env-file (its project folder is compose/):
# so LABEL_STUDIO_URL and LABEL_STUDIO_API_KEY in .env win over the demo's.
up-sam up-sam2 up-ocr: export BOOTSTRAP_FLAGS := --interactive
# GPU=1 adds the backend's GPU variant (compose/<backend>.gpu.yml: CUDA torch, DEVICE=cuda, the GPUs).
up-yolo up-spacy up-whisper up-sam up-sam2 up-ocr up-gliner up-grounding: up-%:
	$(MAKE) $(call base_image,$*) ENGINE=docker
	BACKEND=$* docker compose $(if $(wildcard .env),--env-file .env) -f compose/label-studio.yml -f compose/$*.yml \
	  $(if $(GPU),-f compose/$*.gpu.yml) up --build

clean:
	rm -rf $(VENV) .venv-* $(LS_VENV) .pytest_cache .ruff_cache build *.egg-info
