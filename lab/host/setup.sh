#!/usr/bin/env bash
# Make this host able to run the lab: root, disk space, Debian packages, podman configuration.
# Every failure is one clear line on stderr and a non-zero exit.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
need_gib=${LAB_MIN_FREE_GIB:-6}
packages=(podman runc netavark aardvark-dns iptables debootstrap iputils-arping
  openssh-client python3-venv ca-certificates
  # The unit tests start their own BIND, PostgreSQL, MariaDB and sshd on loopback and copy with rsync;
  # the fault tests watch sites with curl.
  bind9 postgresql mariadb-server rsync openssh-server curl
  # The lab's provider package repository (lab/repo/build.sh): apt-ftparchive and its signing key.
  apt-utils gnupg)

fail() { echo "lab setup: $*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || fail "the lab needs root (rootful podman, debootstrap); run as root."
[ -r /etc/debian_version ] || fail "the lab needs a Debian host (apt, debootstrap)."

store=/var/lib/containers
mkdir -p "$store"
free_kib=$(df --output=avail -k "$store" | tail -1)
[ "$free_kib" -ge $((need_gib * 1024 * 1024)) ] \
  || fail "only $((free_kib / 1024 / 1024)) GiB free under $store; the lab needs at least ${need_gib} GiB (images and servers)."

missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f '${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "lab setup: installing ${missing[*]}"
  # Nothing installed here may start a service on the host.
  guard_made=no
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod 755 /usr/sbin/policy-rc.d
    guard_made=yes
  fi
  apt-get update -qq || fail "apt-get update failed; the Debian mirror is not reachable."
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" > /tmp/hosting-lab-apt.log 2>&1 \
    || fail "apt-get install ${missing[*]} failed (log: /tmp/hosting-lab-apt.log)."
  [ "$guard_made" = no ] || rm -f /usr/sbin/policy-rc.d
fi

mkdir -p /etc/containers
if ! cmp -s "$here/containers.conf" /etc/containers/containers.conf; then
  cp "$here/containers.conf" /etc/containers/containers.conf
fi

# The default ulimits must stay within the host's hard limits, or podman cannot start anything.
hard_nofile=$(ulimit -Hn)
if [ "$hard_nofile" != unlimited ] && [ "$hard_nofile" -lt 16384 ]; then
  sed -i "s/nofile=16384:16384/nofile=${hard_nofile}:${hard_nofile}/" /etc/containers/containers.conf
fi

podman info > /tmp/hosting-lab-podman-info.log 2>&1 \
  || fail "podman cannot run on this host: $(grep -m1 -i error /tmp/hosting-lab-podman-info.log || tail -1 /tmp/hosting-lab-podman-info.log)"
