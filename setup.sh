#!/usr/bin/env bash
# Installs the system packages shmframe's build needs, only when missing:
#   cmake and nasm, to build the libjpeg-turbo that the `turbojpeg` crate bundles
#   (TurboJPEG 3 API; Debian 12 ships only 2.1, so it is built from the crate's source).
# Safe to re-run. Used by the README's first command and by .ci/run.
set -euo pipefail

have() { command -v "$1" >/dev/null 2>&1; }

missing=()
have cmake || missing+=(cmake)
have nasm || missing+=(nasm)
have cc || missing+=(gcc)
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if have apt-get && [ "$(id -u)" = 0 ]; then
  echo "setup: installing ${missing[*]} with apt-get" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
elif have apt-get && have sudo; then
  echo "setup: installing ${missing[*]} with sudo apt-get" >&2
  sudo apt-get update -qq
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "setup: missing ${missing[*]}: install them with your package manager" >&2
  exit 1
fi
