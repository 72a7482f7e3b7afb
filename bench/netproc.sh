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
# Beside each result, the CPU per operation of netproc and of the server
# (from /proc/PID/stat), and for the echoes the client's own (cpu-ns/op,
# and its context switches): where the time goes, in figures the
# machine's noise moves less than latencies.
#
# Runs are interleaved (every case once per round) so that a noisy
# neighbour hurts all alike, each under flock $LOCK so that benchmarks run
# by different people on this machine never overlap; medians and ratios
# are printed at the end.
#
#   bench/netproc.sh                          # 5 rounds: 3 s echoes, 10 s wrk runs
#   RUNS=3 ECHO_TIME=2s DURATION=5s bench/netproc.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # RUNS, DURATION, CONNS, THREADS and LOCK default there
ECHO_TIME=${ECHO_TIME:-3s}

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
sup=$(pgrep -f "^$work/saturn supervisor start" | head -1)
for _ in $(seq 100); do netproc=$(pgrep -P "$sup" -f netproc | head -1 || true); [ -n "$netproc" ] && break; sleep 0.05; done

# server NAME IMPL KIND: start a server, remember its address in addr[NAME].
declare -A addr spid
server() {
	local out="$work/$1.addr"
	"$work/netbench" "$3" -impl "$2" -listen 127.0.0.1:0 >"$out" 2>"$work/$1.log" &
	pids+=($!)
	spid[$1]=$!
	for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
	[ -s "$out" ] || { echo "$1 did not start:" >&2; cat "$work/$1.log" >&2; exit 1; }
	addr[$1]=$(head -1 "$out")
}
server echo-net net echo-server
server echo-saturn saturn echo-server
server http-net net http-server
server http-saturn saturn http-server

# ticks PID: its CPU time (user and system) in clock ticks.
ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
hz=$(getconf CLK_TCK)
# measured SERVER CMD...: run CMD, which prints a result line, and add to
# it the CPU per operation that netproc and the server (an app, or a
# process on Go's net) spent meanwhile; the line goes to $results too.
measured() {
	local srv=${spid[$1]}; shift
	local np0 sv0 line
	flock "$lockfd"
	np0=$(ticks "$netproc") sv0=$(ticks "$srv")
	line=$("$@")
	line+=$(awk -v n="$(awk '{ print $2 }' <<<"$line")" -v hz="$hz" \
		-v np=$(($(ticks "$netproc") - np0)) -v sv=$(($(ticks "$srv") - sv0)) \
		'BEGIN { printf "\t%.0f netproc-cpu-ns/op\t%.0f server-cpu-ns/op", np * 1e9 / hz / n, sv * 1e9 / hz / n }')
	flock -u "$lockfd"
	echo "$line" | tee -a "$results"
}
# wrkrun SERVER: wrk against it, as a result line (requests in the
# iterations column, so that measured divides by them).
wrkrun() {
	local out rps n
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" "http://${addr[$1]}/")
	if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
		echo "$1: errors:" >&2; echo "$out" >&2; exit 1
	fi
	rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
	n=$(awk '/requests in/ { print $1 }' <<<"$out")
	printf 'BenchmarkHTTP1K/%s\t%s\t%s req/s\n' "${1#http-}" "$n" "$rps"
}

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "# echo: ${ECHO_TIME} per run; wrk -t$THREADS -c$CONNS -d$DURATION; $RUNS interleaved rounds; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: >"$results"
exec {lockfd}>>"$LOCK" # opened after the servers start, so that none of them holds it
for run in $(seq "$RUNS"); do
	measured echo-net "$work/netbench" echo-client -impl net -addr "${addr[echo-net]}" -time "$ECHO_TIME" -name Echo64/net
	measured echo-net "$work/netbench" echo-client -impl saturn -addr "${addr[echo-net]}" -time "$ECHO_TIME" -name Echo64/saturn-client
	measured echo-saturn "$work/netbench" echo-client -impl net -addr "${addr[echo-saturn]}" -time "$ECHO_TIME" -name Echo64/saturn-server
	measured echo-saturn "$work/netbench" echo-client -impl saturn -addr "${addr[echo-saturn]}" -time "$ECHO_TIME" -name Echo64/saturn-both
	for s in http-net http-saturn; do
		measured "$s" wrkrun "$s"
	done
done
echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
go run ./bench/benchsum -ratio 'Echo64/saturn-client//Echo64/net' -ratio 'Echo64/saturn-server//Echo64/net' \
	-ratio 'Echo64/saturn-both//Echo64/net' <"$results"
echo
go run ./bench/benchsum -metric req/s -ratio 'HTTP1K/saturn//HTTP1K/net' <"$results" | tail -3
