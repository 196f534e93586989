#!/bin/sh
# SPDX-License-Identifier: Apache-2.0
# test-sdk.sh: a third party's view of the SDK. Install the main build into a temporary root
# (meson install --destdir), build examples/hello-plugin outside the source tree against the
# installed headers through pkg-config only, install it into the SDK's plugindir, check what it
# exports, run the contract suite on it through the real loader, and list it with the CLI.
set -eu
: "${TEROK_TEST_BUILD_DIR:?run through meson test}" "${TEROK_TEST_SOURCE_DIR:?}" "${TEROK_TEST_CLI:?}"
MESON=${MESON:-meson}

T=$(mktemp -d /tmp/terok-sdk.XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "test-sdk: $*" >&2; exit 1; }

echo "== meson install --destdir $T/root"
"$MESON" install -C "$TEROK_TEST_BUILD_DIR" --destdir "$T/root" --no-rebuild --quiet ||
  fail "meson install failed"
PC=$(find "$T/root" -name terok-sandbox-plugin.pc | head -n 1)
[ -n "$PC" ] || fail "terok-sandbox-plugin.pc was not installed"
[ -f "$T/root/$(sed -n 's/^prefix=//p' "$PC")/include/terok/plugin.h" ] ||
  fail "terok/plugin.h not installed under the prefix"

# Only the installed SDK: no system .pc files, paths relocated into the temporary root.
PKG_CONFIG_LIBDIR=$(dirname "$PC")
PKG_CONFIG_PATH=
PKG_CONFIG_SYSROOT_DIR=$T/root
export PKG_CONFIG_LIBDIR PKG_CONFIG_PATH PKG_CONFIG_SYSROOT_DIR
PLUGINDIR=$(pkg-config --variable=plugindir terok-sandbox-plugin)
echo "== pkg-config: cflags '$(pkg-config --cflags terok-sandbox-plugin)', plugindir '$PLUGINDIR'"
case "$PLUGINDIR" in "$T/root"/*) ;; *) fail "plugindir '$PLUGINDIR' is not inside the install root" ;; esac

echo "== build examples/hello-plugin out of tree"
cp -R "$TEROK_TEST_SOURCE_DIR/examples/hello-plugin" "$T/hello"
make -s -C "$T/hello" || fail "the example plugin does not build against the installed SDK"
make -s -C "$T/hello" install || fail "make install failed"
SO=$PLUGINDIR/clearance-hello.so
[ -f "$SO" ] || fail "$SO not installed"

echo "== exports"
EXPORTS=$(nm -D --defined-only "$SO" | awk '{print $3}' | sort | tr '\n' ' ')
[ "$EXPORTS" = "terok_plugin_init " ] || fail "exports '$EXPORTS', expected only terok_plugin_init"

echo "== contract suite on the example, through the real loader"
mkdir -m 0755 "$T/only-hello"
cp "$SO" "$T/only-hello/" && chmod 0644 "$T/only-hello/clearance-hello.so"
TEROK_TEST_PLUGIN_DIR=$T/only-hello "$TEROK_TEST_BUILD_DIR/tests/plugins/test-contract" --jobs 1 ||
  fail "the example plugin breaks the plugin contract"

echo "== terok-sandbox plugins list --json"
printf '[core]\nplugin-dir = %s\n' "$PLUGINDIR" > "$T/sandbox.conf"
chmod 0600 "$T/sandbox.conf"
OUT=$("$TEROK_TEST_CLI" --config "$T/sandbox.conf" plugins list --json) ||
  fail "plugins list failed (needs config_load to read [core] plugin-dir)"
echo "$OUT"
echo "$OUT" | grep -q '{"file":"clearance-hello.so","path":"'"$SO"'","kind":"clearance","name":"hello","version":"1.0.0","abi":"1.0","caps":\[\],"status":"ok","reason":null}' ||
  fail "clearance-hello.so is not listed as ok"
echo "test-sdk: ok"
