#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# scripts/setup-host.sh: make a Debian 12 machine ready to build, test and demo terok-sandbox.
# Installs the packages (apt-get), applies the host fixes some machines need (MACHINE.md §2, §3,
# §11), creates the rootless test user and imports the local busybox test image. Idempotent:
# every step checks before it changes anything. Needs root.
set -euo pipefail

[ "$(id -u)" = 0 ] || { echo "setup-host: run as root (sudo $0)" >&2; exit 1; }

export DEBIAN_FRONTEND=noninteractive
PACKAGES=(
  # build
  gcc meson ninja-build pkg-config clang-format git curl ca-certificates
  libjson-c-dev libsqlite3-dev libsodium-dev libinih-dev libelf-dev libcurl4-openssl-dev
  libssl-dev  # gate-git: HMAC-SHA1 of hashed known_hosts entries
  libmicrohttpd-dev libhttp-parser-dev libgit2-dev zlib1g-dev libnftables-dev libnetfilter-log-dev libmnl-dev libsystemd-dev
  libsecret-1-dev libglib2.0-dev libcriterion-dev
  # run and test
  podman crun uidmap slirp4netns fuse-overlayfs catatonit conmon netavark nftables iproute2
  busybox-static dbus dbus-user-session gnome-keyring libsecret-tools python3-dbusmock
  sqlite3 jq hyperfine util-linux dnsmasq-base
  # bench/gate: the nginx + fcgiwrap + git http-backend baseline
  nginx-light fcgiwrap
  # ssh tests: ssh-keygen/ssh-add/ssh, an sshd each test starts on a loopback port, socat to
  # reach it from a container over a unix socket
  openssh-client openssh-server socat
  openssl python3  # broker-container: the test CA and the HTTPS upstream
)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup-host: installing ${missing[*]}"
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # The tests start their own sshd on a loopback port: a system sshd we just installed is not
  # wanted (one the operator already had is left alone).
  if [[ " ${missing[*]} " == *" openssh-server "* ]] && [ -d /run/systemd/system ]; then
    systemctl disable --now ssh.service ssh.socket >/dev/null 2>&1 || true
  fi
fi

# (1) crun refuses cgroup "hybrid mode" while cgroup2 holds a controller (hugetlb on some VMs):
#     bind that controller to a v1 hierarchy instead.
if [ -f /sys/fs/cgroup/unified/cgroup.controllers ] &&
   grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null; then
  mkdir -p /sys/fs/cgroup/hugetlb
  mountpoint -q /sys/fs/cgroup/hugetlb || mount -t cgroup -o hugetlb cgroup /sys/fs/cgroup/hugetlb
fi

# (2) Without CAP_SYS_RESOURCE rootful podman's default RLIMIT_NOFILE/NPROC fail; the stock
#     ping_group_range sysctl cannot be written when --userns=auto joins a netns we made.
#     Only written when we own the file (never clobber an operator's containers.conf).
CONF=/etc/containers/containers.conf
if [ ! -e "$CONF" ] || grep -q '^# terok-sandbox setup-host' "$CONF"; then
  hn=$(ulimit -Hn)
  mkdir -p /etc/containers
  cat > "$CONF" <<CONFEOF
# terok-sandbox setup-host: written for a host without CAP_SYS_RESOURCE (see MACHINE.md §2)
[containers]
default_ulimits = ["nofile=${hn}:${hn}", "nproc=32768:32768"]
default_sysctls = []
CONFEOF
fi

# (3) rootful --userns=auto needs subordinate ids for the "containers" user
grep -q '^containers:' /etc/subuid || echo 'containers:2147483647:2147483648' >> /etc/subuid
grep -q '^containers:' /etc/subgid || echo 'containers:2147483647:2147483648' >> /etc/subgid

# (4) no udev: /dev/net/tun and /dev/fuse may be 0600 -> rootless slirp4netns/fuse fail
for d in /dev/net/tun /dev/fuse; do [ -e "$d" ] && chmod 0666 "$d"; done

# (5) the rootless test user, with subids and a runtime dir (no logind here)
TEROK_CI_USER=${TEROK_CI_USER:-terokci}
id "$TEROK_CI_USER" >/dev/null 2>&1 || useradd -m -s /bin/bash "$TEROK_CI_USER"
CI_UID=$(id -u "$TEROK_CI_USER")
install -d -m 700 -o "$TEROK_CI_USER" -g "$TEROK_CI_USER" "/run/user/$CI_UID"

# (6) the local test image (busybox-static, no registry)
IMG=localhost/terok-busybox:test
TAR=/var/tmp/terok-busybox.tar
if [ ! -s "$TAR" ]; then
  R=$(mktemp -d); chmod 755 "$R"
  mkdir -p "$R"/{bin,etc,tmp,proc,sys,dev,root,workspace}
  cp /bin/busybox "$R/bin/"
  chroot "$R" /bin/busybox --install -s /bin
  echo 'root:x:0:0:root:/root:/bin/sh' > "$R/etc/passwd"; echo 'root:x:0:' > "$R/etc/group"
  tar -C "$R" -cf "$TAR.tmp" . && mv "$TAR.tmp" "$TAR"; rm -rf "$R"; chmod 644 "$TAR"
fi
podman image exists "$IMG" 2>/dev/null || podman import -q "$TAR" "$IMG" >/dev/null
as_ci() {
  runuser -u "$TEROK_CI_USER" -- env -i HOME="/home/$TEROK_CI_USER" PATH=/usr/bin:/bin:/usr/sbin \
    XDG_RUNTIME_DIR="/run/user/$CI_UID" DBUS_SESSION_BUS_ADDRESS=disabled: "$@"
}
as_ci podman image exists "$IMG" 2>/dev/null || as_ci podman import -q "$TAR" "$IMG" >/dev/null
# (7) the gate's container test image: busybox + the host's git and its libraries (no registry)
GIT_IMG=localhost/terok-git:test
GIT_TAR=/var/tmp/terok-git.tar
[ -s "$GIT_TAR" ] || "$(dirname "$0")/make-git-image.sh" "$GIT_TAR"
podman image exists "$GIT_IMG" 2>/dev/null || podman import -q "$GIT_TAR" "$GIT_IMG" >/dev/null
echo "setup-host: ready (images $IMG $GIT_IMG, rootless user $TEROK_CI_USER)"
