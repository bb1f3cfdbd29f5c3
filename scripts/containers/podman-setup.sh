#!/usr/bin/env bash
# Podman as the engine of the image tests (tests/images), on a Debian machine as root; safe to rerun.
# runc, not crun, and low default ulimits: containers here may not raise their limits to the host's, and
# runc with nofile/nproc 1024 is what starts on these machines.
set -euo pipefail

PACKAGES=(podman runc uidmap fuse-overlayfs slirp4netns mmdebstrap)
missing=()
for package in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

CONF=/etc/containers/containers.conf.d/50-labelzoo.conf
WANTED='[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]

[engine]
runtime = "runc"'
if [ "$(cat "$CONF" 2>/dev/null)" != "$WANTED" ]; then
  mkdir -p "$(dirname "$CONF")"
  printf '%s\n' "$WANTED" >"$CONF"
fi
