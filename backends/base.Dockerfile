# The start of every backend's image: Python, the user, the data volume, the health check and the labelzoo core.
# backends/<name>/Dockerfile builds FROM it and adds only what is its own (system packages, its folder and Python
# packages, its command). Build it first, from the repository root:
#   docker build -f backends/base.Dockerfile -t labelzoo-base:local .
# The torch backends start from the same base with PyTorch in it (the versions constraints.txt pins):
#   CPU:         docker build -f backends/base.Dockerfile --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t labelzoo-torch:local .
#   NVIDIA GPU:  docker build -f backends/base.Dockerfile --build-arg TORCH_INDEX_URL=https://pypi.org/simple -t labelzoo-torch:gpu .
#                (PyPI's Linux torch wheels are CUDA builds and bring triton)
# `make image BACKEND=<name>` builds the base its Dockerfile starts from, then the backend (podman: add
# --format docker, or HEALTHCHECK is dropped).
FROM python:3.11-slim

# No PIP_NO_CACHE_DIR: the pip installs use a build cache mount, which stays out of the image.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MODEL_DIR=/data/models \
    MEDIA_CACHE_DIR=/data/cache \
    PORT=9090

RUN useradd --create-home --uid 1000 labelzoo && mkdir -p /data && chown labelzoo /data
WORKDIR /app
VOLUME /data
EXPOSE 9090
# /health answers 503 once the model has failed to load or MODEL_DIR cannot be written; PORT is read when
# the check runs, so a container started with another PORT is checked where it listens.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/health' % os.environ['PORT'], timeout=2)"]

# PyTorch (with TORCH_INDEX_URL set) before the core, so that a change to the core does not install it again
ARG TORCH_INDEX_URL=""
RUN --mount=type=cache,target=/root/.cache/pip if [ -n "${TORCH_INDEX_URL}" ]; then \
      pip install --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1; fi

COPY pyproject.toml setup.py README.md constraints.txt /app/
COPY shared /app/shared
RUN --mount=type=cache,target=/root/.cache/pip pip install -c constraints.txt .
