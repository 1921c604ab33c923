#!/usr/bin/env bash
# Set up everything RAVE GUI needs: system packages (where this machine allows),
# a .venv with the pinned Python packages, and the app itself (editable).
# Idempotent: a second run with nothing changed only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(ffmpeg libegl1 libgl1 libglib2.0-0 libfontconfig1 libdbus-1-3 libxkbcommon0
  libxkbcommon-x11-0 libxcb-cursor0 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
  libxcb-render-util0 libxcb-shape0 libxcb-xkb1 libx11-xcb1 libpulse0 pulseaudio xvfb x11-utils
  imagemagick openssh-server openssh-client rsync slurmctld slurmd slurm-client munge)
# programs that must be there (a package can be "installed" yet lack them): program:package
REQUIRED_PROGRAMS=(sshd:openssh-server slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client munged:munge)

have_program() {  # on PATH, or in an sbin folder (not on a normal user's PATH)
  command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/sbin/$1" ]
}

missing=()
if command -v dpkg-query >/dev/null 2>&1; then
  for pkg in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  for entry in "${REQUIRED_PROGRAMS[@]}"; do
    prog=${entry%%:*} pkg=${entry#*:}
    if ! have_program "$prog" && [[ " ${missing[*]} " != *" $pkg "* ]]; then
      missing+=("$pkg")
    fi
  done
  if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      echo "setup: installing system packages: ${missing[*]}"
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    else
      echo "setup: these system packages are missing: ${missing[*]}"
      echo "setup: install them with: sudo apt-get install ${missing[*]}"
      echo "setup: (ffmpeg is required to preprocess audio; pulseaudio for the audio device test;"
      echo "setup:  openssh-server, openssh-client and rsync for remote machines and their tests;"
      echo "setup:  slurmctld, slurmd, slurm-client and munge for the Slurm tests, a single-node cluster"
      echo "setup:  on 127.0.0.1 that scripts/slurm_for_tests.py starts in a temp folder;"
      echo "setup:  the others for the Qt window and screenshots)"
    fi
  fi
else
  if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "setup: ffmpeg is missing; install it (macOS: brew install ffmpeg) — RAVE needs it to read audio."
  fi
  for entry in "${REQUIRED_PROGRAMS[@]}"; do
    have_program "${entry%%:*}" ||
      echo "setup: ${entry%%:*} is missing (package ${entry#*:}): the ssh and Slurm tests need it."
  done
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  "$PYTHON" -m venv .venv
fi
want=$(cat requirements.txt pyproject.toml | sha256sum | cut -c1-16)
if [ "$(cat .venv/.setup-stamp 2>/dev/null)" != "$want" ]; then
  echo "setup: installing Python packages (torch + acids-rave: a few GB the first time)"
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q -r requirements.txt
  .venv/bin/python -m pip install -q --no-deps -e .
  echo "$want" > .venv/.setup-stamp
fi
