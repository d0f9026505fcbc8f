#!/usr/bin/env bash
# Set up deid on a fresh Debian/Ubuntu machine: system packages, a virtual environment in .venv,
# and the package with its test extras. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(tesseract-ocr tesseract-ocr-eng dicom3tools chromium chromium-driver)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; else SUDO="sudo"; fi
  echo "Installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
echo "Ready: .venv/bin/deid --help"
