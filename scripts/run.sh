#!/usr/bin/env bash
# saturn's main job on a fresh machine: installs what it needs (as root),
# builds saturn into ./bin, and starts an instance in the foreground on the
# built-in default configuration: netproc, diskproc and the apps it lists.
# Stop it with Ctrl-C, or `bin/saturn supervisor stop` from another terminal.
#
#   ./scripts/run.sh                       # foreground
#   ./scripts/run.sh --detach              # background; returns once ready
#   ./scripts/run.sh --config my.toml      # your own configuration
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh
mkdir -p bin
go build -o bin/saturn ./cmd/saturn
echo "built bin/saturn; starting the instance (bin/saturn status in another terminal shows it)" >&2
exec bin/saturn supervisor start "$@"
