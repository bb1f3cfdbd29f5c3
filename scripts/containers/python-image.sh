#!/usr/bin/env bash
# python:3.11-slim, which the images start from (backends/base.Dockerfile), for podman: pulled, or where no
# registry can be reached, a local stand-in under the same name: Debian bookworm's Python 3.11 (the official
# image is Debian with its own build) made a virtualenv at /usr/local, so that python and pip are in
# /usr/local/bin as there and pip installs into it. The stand-in trusts what this machine trusts (its CA
# bundle), as pip inside the builds needs. Does nothing when the image is there already.
set -euo pipefail

IMAGE=docker.io/library/python:3.11-slim
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
podman image exists "$IMAGE" && exit 0
timeout 300 podman pull --quiet "$IMAGE" >/dev/null 2>&1 && exit 0

BUNDLE=/etc/ssl/certs/ca-certificates.crt
mmdebstrap --quiet --variant=minbase --include=python3,python3-venv,ca-certificates,netbase,tzdata \
  --customize-hook="cp $BUNDLE \"\$1/usr/local/share/ca-certificates/host-bundle.crt\"" \
  --customize-hook='chroot "$1" update-ca-certificates --fresh >/dev/null 2>&1' \
  --customize-hook='chroot "$1" python3 -m venv /usr/local' \
  --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
  bookworm - "$MIRROR" |
  podman import --quiet \
    --change 'ENV PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' \
    --change "ENV PIP_CERT=$BUNDLE" \
    --change "ENV REQUESTS_CA_BUNDLE=$BUNDLE" \
    --change 'CMD ["python3"]' \
    - "$IMAGE" >/dev/null
echo "built the stand-in $IMAGE"
