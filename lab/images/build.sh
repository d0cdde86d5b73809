#!/usr/bin/env bash
# Build the lab image of one infrastructure version (debootstrap + the catalogue's packages) and
# import it into podman. The image carries a label with the hash of its recipe; a build is skipped
# when an image with the same recipe already exists, and an interrupted build never gets tagged.
set -euo pipefail

version=${1:?usage: build.sh VERSION}
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
state=${HOSTING_LAB_STATE:-/var/lib/hosting-lab}
catalogue=$top/roles/catalogue/defaults/main.yml
python=${LAB_PYTHON:-$top/.venv/bin/python}
tag=localhost/hosting-lab:$version

read -r codename packages < <("$python" "$here/recipe.py" "$catalogue" "$version")
recipe=$( (cd "$here" && find . -type f -print0 | sort -z | xargs -0 sha256sum
  echo "$version $codename $packages") | sha256sum | cut -c1-16)

if [ "$(podman image inspect --format '{{ index .Labels "hosting.lab.recipe" }}' "$tag" 2>/dev/null)" = "$recipe" ]; then
  echo "image $tag is up to date (recipe $recipe)"
  exit 0
fi

mirror=${LAB_DEBIAN_MIRROR:-$("$python" "$here/recipe.py" --mirror)}
work=$state/build/$version
rootfs=$work/rootfs
cleanup() {
  for m in var/cache/apt/archives proc sys dev/pts dev; do umount -l "$rootfs/$m" 2>/dev/null || true; done
}
trap cleanup EXIT
cleanup
rm -rf "$work"
mkdir -p "$work"

echo "building $tag ($codename, recipe $recipe): debootstrap"
# Downloaded packages are kept between builds, so a recipe change costs no second download.
cache=$state/cache/$codename
mkdir -p "$cache"
debootstrap --variant=minbase --cache-dir="$cache" --include=systemd,systemd-sysv,dbus,openssh-server \
  "$codename" "$rootfs" "$mirror" > "$work/debootstrap.log" 2>&1 \
  || { tail -20 "$work/debootstrap.log"; echo "debootstrap of $codename failed (log: $work/debootstrap.log)" >&2; exit 1; }

printf '#!/bin/sh\nexit 101\n' > "$rootfs/usr/sbin/policy-rc.d"
chmod 755 "$rootfs/usr/sbin/policy-rc.d"
mount -t proc proc "$rootfs/proc"
mount -t sysfs sys "$rootfs/sys"
mount --bind /dev "$rootfs/dev"
mount --bind /dev/pts "$rootfs/dev/pts"
mount --bind "$cache" "$rootfs/var/cache/apt/archives"

echo "building $tag: packages"
lab_packages=$(grep -v '^#' "$here/lab-packages.txt" | tr '\n' ' ')
# shellcheck disable=SC2086
chroot "$rootfs" env DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 sh -c \
  "apt-get update -qq && apt-get install -y -qq --no-install-recommends $packages $lab_packages" \
  > "$work/packages.log" 2>&1 \
  || { tail -20 "$work/packages.log"; echo "package install for $tag failed (log: $work/packages.log)" >&2; exit 1; }
cleanup

echo "building $tag: configuration"
cp -r "$here"/rootfs/. "$rootfs/"
ln -sf /etc/systemd/system/lab-ssh-host-keys.service \
  "$rootfs/etc/systemd/system/multi-user.target.wants/lab-ssh-host-keys.service"
# Units that make no sense in a container, or would wait for hardware.
for unit in getty@tty1.service console-getty.service systemd-udevd.service \
  systemd-networkd-wait-online.service apt-daily.timer apt-daily-upgrade.timer; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
# BIND is in every image but runs only where the lab makes a name server.
systemctl --root="$rootfs" --quiet disable named.service 2>/dev/null || true
rm -f "$rootfs"/etc/ssh/ssh_host_* "$rootfs/usr/sbin/policy-rc.d" "$rootfs/etc/apt/sources.list"
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
: > "$rootfs/etc/machine-id"
mkdir -p "$rootfs/root/.ssh" "$rootfs/etc/hosting/accounts"
chmod 700 "$rootfs/root/.ssh"
echo "$version" > "$rootfs/etc/hosting/infrastructure-version"

echo "building $tag: import"
tar --numeric-owner --xattrs -C "$rootfs" -c . | podman import --quiet \
  --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' \
  --change "LABEL=hosting.lab.recipe=$recipe" --change "LABEL=hosting.lab.version=$version" \
  - "$tag" > /dev/null
rm -rf "$work"
# Earlier builds of this version, now untagged, only take space.
podman images --quiet --filter dangling=true --filter "label=hosting.lab.version=$version" | xargs -r podman rmi > /dev/null 2>&1 || true
echo "image $tag built (recipe $recipe)"
