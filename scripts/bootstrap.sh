#!/usr/bin/env bash
# Creates .venv with the pinned dependencies (constraints.txt) and installs the Debian
# packages the project needs. Safe to run again: it only does what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3

need_apt=()
"$PYTHON" -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
# Debian packages the project needs (one per line, # comments) in scripts/apt-packages.txt.
while read -r pkg; do
  [ -n "$pkg" ] || continue
  dpkg -s "$pkg" >/dev/null 2>&1 || need_apt+=("$pkg")
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' scripts/apt-packages.txt)
if [ ${#need_apt[@]} -gt 0 ]; then
  SUDO=
  if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      SUDO=sudo
    else
      echo "[setup] these Debian packages are missing: ${need_apt[*]}" >&2
      echo "[setup] installing them needs root (or sudo without a password); ask an administrator to run:" >&2
      echo "    apt-get update && apt-get install -y ${need_apt[*]}" >&2
      echo "[setup] then run this command again." >&2
      exit 1
    fi
  fi
  echo "[setup] installing Debian packages: ${need_apt[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

stamp=.venv/.installed
if [ -f "$stamp" ] && [ "$stamp" -nt constraints.txt ] && [ "$stamp" -nt pyproject.toml ]; then
  exit 0
fi
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $("$PYTHON" --version)"
  "$PYTHON" -m venv .venv
fi
echo "[setup] installing pinned dependencies (constraints.txt)"
.venv/bin/python -m pip install -q --upgrade pip setuptools wheel -c constraints.txt
log=.venv/install.log
if ! .venv/bin/python -m pip install -q -c constraints.txt -e '.[dev]' >"$log" 2>&1; then
  cat "$log"; exit 1
fi
touch "$stamp"
