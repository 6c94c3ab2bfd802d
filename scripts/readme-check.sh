#!/usr/bin/env bash
# Runs every ```sh block of README.md after the first (the two commands that
# include this check), in order and as written, from the repository root, so
# the README cannot rot. The Benchmarks section is left out (each benchmark
# runs for minutes). Background processes the blocks start are stopped at
# the end. Fails at the first failing command.
set -euo pipefail
cd "$(dirname "$0")/.."
script=$(mktemp)
trap 'rm -f "$script"' EXIT
python3 - README.md > "$script" <<'PY'
import re, sys
text = open(sys.argv[1]).read().split("\n## Benchmarks")[0]
blocks = re.findall(r"```sh\n(.*?)```", text, re.S)[1:]
print("set -euo pipefail")
print("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT")
for number, block in enumerate(blocks, 1):
    print(f"echo '== README block {number} of {len(blocks)}' >&2")
    print(block)
PY
bash "$script"
