#!/bin/sh
# Install elastiq as a systemd service on this machine: the README's by-hand path, what ecm's
# master user-data does on the masters it writes.  Run as root from a checkout:
#
#   sudo sh tools/install-service.sh [PIP_SPEC]     # PIP_SPEC: what to install (this checkout)
#
# Makes, each step only where it is missing: the system user `elastiq` (home /var/lib/elastiq,
# the unit's state directory); elastiq in its own virtual environment /opt/elastiq (upgraded on
# every run), linked as /usr/local/bin/elastiq and elastiqctl, where the unit's ExecStart looks;
# /etc/elastiq/elastiq.yaml, the commented example, mode 0640 root:elastiq (it will hold the
# cloud credentials; the unit runs as elastiq); /etc/systemd/system/elastiq.service.  Starts
# nothing: edit the configuration, check it, then enable the unit (printed at the end).
# ROOT=DIR installs into DIR instead of / (tests: the scripts in the virtual environment then
# name DIR's path, so only ROOT=/ gives a service that runs).
set -eu
ROOT=${ROOT:-}
here=$(cd "$(dirname "$0")/.." && pwd)
spec=${1:-$here}
venv=/opt/elastiq
say() { echo "install-service.sh: $*" >&2; }

[ "$(id -u)" = 0 ] || { say "run as root (sudo sh tools/install-service.sh)"; exit 1; }

if grep -q '^elastiq:' "$ROOT/etc/passwd"; then
    say "user elastiq exists"
else
    useradd ${ROOT:+--prefix "$ROOT"} --system --user-group --home-dir /var/lib/elastiq \
        --shell /usr/sbin/nologin elastiq
    say "made the system user elastiq"
fi
gid=$(awk -F: '$1 == "elastiq" { print $3 }' "$ROOT/etc/group")

say "installing $spec into $venv"
ELASTIQ_VENV=$ROOT$venv sh "$here/tools/venv.sh" --upgrade "$spec"
install -d -m 0755 "$ROOT/usr/local/bin"
ln -sf "$venv/bin/elastiq" "$venv/bin/elastiqctl" "$ROOT/usr/local/bin/"

install -d -m 0750 -o 0 -g "$gid" "$ROOT/etc/elastiq"
if [ -e "$ROOT/etc/elastiq/elastiq.yaml" ]; then
    say "kept the existing /etc/elastiq/elastiq.yaml"
else
    install -m 0640 -o 0 -g "$gid" "$here/etc/elastiq.yaml" "$ROOT/etc/elastiq/elastiq.yaml"
    say "wrote /etc/elastiq/elastiq.yaml (the commented example, 0640 root:elastiq)"
fi

install -d -m 0755 "$ROOT/etc/systemd/system"
install -m 0644 "$here/systemd/elastiq.service" "$ROOT/etc/systemd/system/elastiq.service"
if [ -z "$ROOT" ] && [ -d /run/systemd/system ]; then
    systemctl daemon-reload
fi
cat <<'NEXT'
installed. Next:
  sudoedit /etc/elastiq/elastiq.yaml                      # cloud, cluster_name, quota
  sudo -u elastiq elastiq config check --online           # as the service will read it
  sudo systemctl enable --now elastiq && elastiqctl status
elastiq reads the pool as the elastiq user: give it an HTCondor token with ADMINISTRATOR on
the workers (see the comment at the top of /etc/systemd/system/elastiq.service).
NEXT
