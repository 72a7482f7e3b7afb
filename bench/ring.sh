#!/usr/bin/env bash
# Ring benchmarks between two processes, against their peers (a bare
# shared-word ping-pong, a Unix-socket pair, a pipe pair), in one run.
# COUNT runs of each (default 5); medians and ratios at the end.
# Usage: bench/ring.sh            (about 2 minutes with COUNT=5)
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-5}
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3)"
go test -run '^$' -bench 'Floor|RoundTrip|Throughput' -count "$COUNT" ./ring/ | tee "$out"
go test -run '^$' -bench 'IdleChannel' -count "${IDLE_COUNT:-3}" ./ring/ | tee -a "$out"
echo
go run ./bench/benchsum \
	-ratio 'RoundTrip/spin//Floor' \
	-ratio 'UnixSocketRoundTrip//RoundTrip/spin' \
	-ratio 'PipeRoundTrip//RoundTrip/spin' \
	-ratio 'UnixSocketRoundTrip//RoundTrip/sleep-futex' \
	-ratio 'UnixSocketRoundTrip//RoundTrip/sleep-eventfd' <"$out"
