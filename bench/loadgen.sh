#!/usr/bin/env bash
# What netproc costs a client: saturn's load generator driving the same
# target (nginx, one worker, sendfile on, a 1 KiB file, 64 keep-alive
# connections, closed loop) through netproc on the kernel backend
# (`saturn app loadgen`, attached to an instance as a user app) and on the
# kernel's own sockets (`saturn app loadgen --kernel`, the same binary and
# code but the dialer). Rounds are interleaved (each way once a round, every
# run under flock $LOCK); medians of requests/s and p99, and the median of
# the per-round ratios netproc ÷ kernel at the end.
#
#   bench/loadgen.sh                           # 5 rounds of 10 s
#   RUNS=7 DURATION=5s CONNS=32 bench/loadgen.sh
#   SATURN=/path/to/saturn bench/loadgen.sh    # a build of your own
#
# Only loopback traffic; the instance and nginx go when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # RUNS, DURATION, CONNS, LOCK default there

for c in nginx flock python3; do command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || { echo "$c is not installed" >&2; exit 1; }; done
work=$(mktemp -d)
chmod 755 "$work" # nginx's worker runs as nobody
export SATURN_STATE_DIR="$work/state" SATURN_INSTANCE="lg$$"
saturn=${SATURN:-$work/saturn}
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"$saturn" supervisor stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
[ -n "${SATURN:-}" ] || go build -o "$saturn" ./cmd/saturn

mkdir -p "$work/site"
head -c 1024 /dev/urandom >"$work/site/1k.bin"
chmod 755 "$work/site" && chmod 644 "$work/site/1k.bin"
port=$(( 20000 + $$ % 20000 ))
nginx_conf "$work/nginx" "$work/site" "$port"
nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
url="http://127.0.0.1:$port/1k.bin"

cat >"$work/lg.toml" <<CONF
[netproc]
backend = "kernel"
[diskproc]
root = "$work/state/root"
sample_site = true
CONF
"$saturn" supervisor start --detach --config "$work/lg.toml" >/dev/null
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done

# run WAY [loadgen flags...] prints "WAY REQ/S P99_MS ERRORS ROUND".
run() {
	local way=$1
	shift
	flock "$LOCK" "$saturn" app loadgen --json -c "$CONNS" -d "$DURATION" "$@" "$url" |
		python3 -c 'import json,sys; r=json.load(sys.stdin); print(sys.argv[1], r["requests_per_sec"], r["latency"]["p99_ns"]/1e6, sum(r["errors"].values()), sys.argv[2])' "$way" "$round"
}
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(nginx -v 2>&1)"
echo "# saturn app loadgen -c$CONNS -d$DURATION $url, $RUNS interleaved rounds; load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
for round in $(seq "$RUNS"); do
	run netproc | tee -a "$results"
	run kernel --kernel | tee -a "$results"
done
echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
by = lambda way, i: [float(r[i]) for r in rows if r[0] == way]
kernel = {r[4]: float(r[1]) for r in rows if r[0] == "kernel"}
ratio = st.median(float(r[1]) / kernel[r[4]] for r in rows if r[0] == "netproc" and kernel.get(r[4]))
print("| client sockets | requests/s (median) | p99 ms (median) | errors | vs kernel (median of per-round ratios) |")
print("| --- | --- | --- | --- | --- |")
for way in ("netproc", "kernel"):
    print(f"| {way} | {st.median(by(way, 1)):.0f} | {st.median(by(way, 2)):.2f} | {sum(by(way, 3)):.0f} | {ratio if way == 'netproc' else 1:.2f}x |")
PY
