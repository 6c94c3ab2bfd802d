#!/usr/bin/env bash
# The main job: build the host (with the `demo` feature, which links the
# ScaleIO gateway simulator) and the shipped drivers, stage the shipped
# drivers (never test fixtures) in a plugins directory, then run
# `southbound demo`: a host serving on a fresh SQLite data directory, the
# simulator registered as a provider, scanned, discovered, and the inventory
# printed; it keeps serving until Ctrl-C.
# Extra arguments go to `southbound demo` (e.g. --once, --api-version 4.5 --topology large).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p southbound-host --features demo
cargo build --quiet -p hello-driver -p scaleio-driver

plugins=target/demo-plugins
rm -rf "$plugins"
mkdir -p "$plugins"
cp target/debug/libhello_driver.so target/debug/libscaleio_driver.so "$plugins/"

southbound=target/debug/southbound
echo "== Drivers in $plugins"
"$southbound" drivers list --plugins "$plugins"
echo
"$southbound" demo --plugins "$plugins" "$@"
