# The start of every backend's image: backends/<name>/Dockerfile builds FROM it and adds only what is its own
# (system packages, its Python packages, its command). Build it first, from the repository root:
#   docker build -f backends/base.Dockerfile -t labelzoo-base:local .
# `make image BACKEND=<name>` builds both (podman: add --format docker, or HEALTHCHECK is dropped).
FROM python:3.11-slim

# No PIP_NO_CACHE_DIR: the backends' pip installs use a build cache mount, which stays out of the image.
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
