#!/usr/bin/env bash
# The main job: build the host and the shipped drivers, stage the shipped
# drivers (never test fixtures) in a plugins directory, and discover the
# example array through hello-driver.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --quiet -p southbound-host -p hello-driver

plugins=target/demo-plugins
rm -rf "$plugins"
mkdir -p "$plugins"
cp target/debug/libhello_driver.so "$plugins/"

password_file=$(mktemp)
trap 'rm -f "$password_file"' EXIT
printf 'hello\n' >"$password_file"

southbound=target/debug/southbound
echo "== Drivers in $plugins"
"$southbound" drivers list --plugins "$plugins"
echo
echo "== Discovery of examples/hello-driver/array.json through hello-driver"
"$southbound" probe --plugins "$plugins" --type hello \
    --host examples/hello-driver/array.json --username admin --password-file "$password_file"
