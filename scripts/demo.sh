#!/usr/bin/env bash
# The main job: build the host and the shipped drivers, stage the shipped
# drivers (never test fixtures) in a plugins directory, start the ScaleIO
# gateway simulator and discover it through the ScaleIO driver.
# Extra arguments go to `southbound demo` (e.g. --api-version 4.5 --topology large).
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p southbound-host -p hello-driver -p scaleio-driver

plugins=target/demo-plugins
rm -rf "$plugins"
mkdir -p "$plugins"
cp target/debug/libhello_driver.so target/debug/libscaleio_driver.so "$plugins/"

southbound=target/debug/southbound
echo "== Drivers in $plugins"
"$southbound" drivers list --plugins "$plugins"
echo
"$southbound" demo --plugins "$plugins" "$@"
