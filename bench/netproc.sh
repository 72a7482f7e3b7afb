#!/usr/bin/env bash
# netproc with the kernel backend against Go's net on the same kernel
# sockets, on loopback, in one run:
#
#   - 64-byte echo round trips on one connection: the client over appproc
#     (through netproc) and the server over appproc, each against both ends
#     on Go's net;
#   - 1 KiB HTTP responses, 64 keep-alive connections, wrk as the client:
#     net/http over appproc against net/http on plain kernel sockets.
#
# Runs are interleaved (every case once per round) so that a noisy
# neighbour hurts all alike; medians and ratios are printed at the end.
#
#   bench/netproc.sh                          # 5 rounds: 3 s echoes, 10 s wrk runs
#   RUNS=3 ECHO_TIME=2s DURATION=5s bench/netproc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-5}
ECHO_TIME=${ECHO_TIME:-3s}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

command -v wrk >/dev/null || { echo "wrk is not installed (scripts/deps.sh bench installs it)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -x "$work/saturn" ] && "$work/saturn" supervisor stop >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/saturn" ./cmd/saturn
go build -o "$work/netbench" ./bench/netbench
export SATURN_STATE_DIR="$work/state" SATURN_INSTANCE=bench
printf '[netproc]\nbackend = "kernel"\n' >"$work/saturn.toml"
"$work/saturn" supervisor start --detach --config "$work/saturn.toml" >/dev/null

# server NAME IMPL KIND: start a server, remember its address in addr[NAME].
declare -A addr
server() {
	local out="$work/$1.addr"
	"$work/netbench" "$3" -impl "$2" -listen 127.0.0.1:0 >"$out" 2>"$work/$1.log" &
	pids+=($!)
	for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
	[ -s "$out" ] || { echo "$1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
	addr[$1]=$(head -1 "$out")
}
server echo-net net echo-server
server echo-saturn saturn echo-server
server http-net net http-server
server http-saturn saturn http-server

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "# echo: ${ECHO_TIME} per run; wrk -t$THREADS -c$CONNS -d$DURATION; $RUNS interleaved rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: >"$results"
for run in $(seq "$RUNS"); do
	"$work/netbench" echo-client -impl net -addr "${addr[echo-net]}" -time "$ECHO_TIME" -name Echo64/net | tee -a "$results"
	"$work/netbench" echo-client -impl saturn -addr "${addr[echo-net]}" -time "$ECHO_TIME" -name Echo64/saturn-client | tee -a "$results"
	"$work/netbench" echo-client -impl net -addr "${addr[echo-saturn]}" -time "$ECHO_TIME" -name Echo64/saturn-server | tee -a "$results"
	"$work/netbench" echo-client -impl saturn -addr "${addr[echo-saturn]}" -time "$ECHO_TIME" -name Echo64/saturn-both | tee -a "$results"
	for s in http-net http-saturn; do
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://${addr[$s]}/")
		if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
			echo "$s: errors:" >&2; echo "$out" >&2; exit 1
		fi
		rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
		printf 'BenchmarkHTTP1K/%s\t1\t%s req/s\n' "${s#http-}" "$rps" | tee -a "$results"
	done
done
echo
go run ./bench/benchsum -ratio 'Echo64/saturn-client//Echo64/net' -ratio 'Echo64/saturn-server//Echo64/net' \
	-ratio 'Echo64/saturn-both//Echo64/net' <"$results"
echo
go run ./bench/benchsum -metric req/s -ratio 'HTTP1K/saturn//HTTP1K/net' <"$results" | tail -3
