#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# run-rootless.sh PROGRAM [ARGS...]: run an integration test binary as the rootless test user
# with a clean environment (MACHINE.md §3). Exit 77 (meson: skipped) when that is impossible.
set -eu
user=${TEROK_CI_USER:-terokci}
if [ "$(id -u)" != 0 ]; then
  echo "run-rootless: not root; the rootful run of the same binary is already rootless" >&2
  exit 77
fi
if ! id "$user" >/dev/null 2>&1; then
  echo "run-rootless: needs the rootless test user '$user' (scripts/setup-host.sh)" >&2
  exit 77
fi
uid=$(id -u "$user")
exec runuser -u "$user" -- env -i HOME="/home/$user" PATH=/usr/bin:/bin:/usr/sbin \
  XDG_RUNTIME_DIR="/run/user/$uid" DBUS_SESSION_BUS_ADDRESS=disabled: NO_COLOR=1 \
  TEROK_TEST_PODMAN_PLUGIN="${TEROK_TEST_PODMAN_PLUGIN:-}" TEROK_TEST_INIT="${TEROK_TEST_INIT:-}" \
  TEROK_TEST_PLUGIN_DIR="${TEROK_TEST_PLUGIN_DIR:-}" TEROK_TEST_CLI="${TEROK_TEST_CLI:-}" \
  "$@"
