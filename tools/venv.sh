#!/bin/sh
# Create the virtual environment ./.venv if it is missing, then `pip install` the arguments
# into it: the set-up commands of the README, on any Python >= 3.9, including Debian's and
# Ubuntu's own (PEP 668: their pip refuses to install outside a virtual environment).
#
# Debian and Ubuntu ship venv's pip bootstrap (ensurepip) in a separate package, python3-venv:
# when it is missing, it is installed with apt-get if we are root, else the command to run is
# printed.  ELASTIQ_VENV names another directory; ELASTIQ_PYTHON another interpreter.
set -eu
venv=${ELASTIQ_VENV:-.venv}
python=${ELASTIQ_PYTHON:-python3}

if ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"  # absent, or left half-made by a venv that had no ensurepip
    if ! "$python" -c 'import ensurepip, venv' 2>/dev/null; then
        version=$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
        packages="python3-venv python$version-venv"
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            echo "tools/venv.sh: installing $packages (venv's pip bootstrap)" >&2
            apt-get update -qq
            # shellcheck disable=SC2086 # two package names, split on purpose
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $packages >&2
        else
            echo "tools/venv.sh: $python cannot create a virtual environment: install" \
                 "$packages first, e.g.: sudo apt-get install $packages" >&2
            exit 1
        fi
    fi
    "$python" -m venv "$venv"
fi
exec "$venv/bin/python" -m pip install --quiet "$@"
