#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/make-git-image.sh TAR: a rootfs tarball for the gate's container tests: busybox-static
# plus the host's own git (/usr/bin/git, /usr/lib/git-core, templates) and every shared library
# those ELF files need (ldd closure), so `git clone http://...` works inside a container without
# a registry or a network. Offline, about 30 MB. Import with `podman import TAR
# localhost/terok-git:test`. Needs root (chroot for busybox --install).
set -euo pipefail
TAR=${1:?usage: make-git-image.sh TAR}
R=$(mktemp -d)
trap 'rm -rf "$R"' EXIT
chmod 755 "$R"
mkdir -p "$R"/{bin,etc,tmp,proc,sys,dev,root,workspace,usr/bin,usr/lib,usr/share}
cp /bin/busybox "$R/bin/"
chroot "$R" /bin/busybox --install -s /bin
echo 'root:x:0:0:root:/root:/bin/sh' >"$R/etc/passwd"
echo 'root:x:0:' >"$R/etc/group"
cp -a /usr/bin/git "$R/usr/bin/"
cp -a /usr/lib/git-core "$R/usr/lib/"
[ -d /usr/share/git-core ] && cp -a /usr/share/git-core "$R/usr/share/"
# the dynamic loader and every library any git program links
find /usr/bin/git /usr/lib/git-core -type f -perm -u+x -exec sh -c \
  '[ "$(head -c4 "$1" | tail -c3)" = ELF ] && ldd "$1"' _ {} \; 2>/dev/null |
  awk '/=> \//{print $3} /^\t\/lib/{print $1}' | sort -u |
  while read -r lib; do
    cp -L --parents "$lib" "$R/"
  done
# git opens /dev/null at start; the engine provides /dev in the container
mknod -m 666 "$R/dev/null" c 1 3
chroot "$R" /usr/bin/git version >/dev/null 2>&1 ||
  { echo "make-git-image: git does not run in the rootfs" >&2; exit 1; }
rm -f "$R/dev/null"
tar -C "$R" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"
chmod 644 "$TAR"
