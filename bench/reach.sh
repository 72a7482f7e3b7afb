#!/usr/bin/env bash
# What the ways of reaching a usertcp instance from the host cost: the same
# load (saturn's load generator on the kernel's sockets, closed loop, 1 KiB
# file) against the web server
#
#   netns    from inside the instance's namespace, to saturn's address
#            (the path that always existed: the TUN device's kernel side);
#   route    from the host, to saturn's address by the host route (one
#            more kernel hop: the veth pair, forwarded in the namespace);
#   publish  from the host, to the published port on 127.0.0.1 (netproc
#            accepts there and connects to saturn's address: a second TCP
#            connection per client, spliced).
#
# ROUNDS rounds, the three paths interleaved in each; the medians of the
# request rate and of p99, and each path's ratio to netns in the same run.
#
#   bench/reach.sh                      # 5 rounds of 5 s, 32 connections
#   ROUNDS=3 DURATION=3s CONNS=8 bench/reach.sh
#
# Needs root (a TUN device, a namespace). Before it sends from the host to
# saturn's address it checks with `ip route get` that the host routes it
# into the instance's own link. Everything it makes goes when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-5s}
CONNS=${CONNS:-32}
[ "$(id -u)" = 0 ] || { echo "bench/reach.sh: needs root (a TUN device and a network namespace)" >&2; exit 1; }

work=$(mktemp -d)
ns="satbr$(( $$ % 100000 ))"
addr="10.$(( 200 + $$ % 50 )).$(( $$ % 250 )).2"
hostport=$(( 20000 + $$ % 20000 ))
export SATURN_STATE_DIR="$work/state" SATURN_INSTANCE="reach$$"
go build -o "$work/saturn" ./cmd/saturn
saturn="$work/saturn"
cleanup() { "$saturn" supervisor stop >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT

cat >"$work/reach.toml" <<TOML
[netproc]
backend = "usertcp"
netns = "$ns"
address = "$addr/24"
publish = ["127.0.0.1:$hostport:8080"]
[diskproc]
sample_site = true
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":8080"]
TOML
"$saturn" supervisor start --detach --config "$work/reach.toml" >/dev/null
link=$("$saturn" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([c for c in d["components"] if c["name"]=="netproc"][0]["info"]["host_route"].split(" via ")[1])')
if ! ip route get "$addr" | grep -q "dev $link "; then
	echo "bench/reach.sh: the host does not route $addr into $link; not sending" >&2
	ip route get "$addr" >&2
	exit 1
fi

run() { # path url [prefix...]
	local path=$1 url=$2; shift 2
	flock /tmp/saturn-bench.lock "$@" "$saturn" app loadgen --kernel --json -c "$CONNS" -d "$DURATION" "$url" |
		python3 -c 'import json,sys; r=json.load(sys.stdin); e=r["errors"]; print("'"$path"'", r["requests_per_sec"], r["latency"]["p99_ns"]/1e6, sum(e.values()))'
}
results="$work/results"
for round in $(seq "$ROUNDS"); do
	run netns "http://$addr:8080/files/1k.bin" ip netns exec "$ns" >>"$results"
	run route "http://$addr:8080/files/1k.bin" >>"$results"
	run publish "http://127.0.0.1:$hostport/files/1k.bin" >>"$results"
	echo "round $round of $ROUNDS done" >&2
done
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $ROUNDS rounds of $DURATION, $CONNS connections, 1 KiB file"
python3 - "$results" <<'PY'
import sys, statistics as st
rows = [l.split() for l in open(sys.argv[1])]
paths = ["netns", "route", "publish"]
med = {p: (st.median(float(r[1]) for r in rows if r[0] == p), st.median(float(r[2]) for r in rows if r[0] == p), sum(int(r[3]) for r in rows if r[0] == p)) for p in paths}
print("| path | requests/s (median) | vs netns | p99 ms (median) | vs netns | errors |")
print("| --- | --- | --- | --- | --- | --- |")
for p in paths:
    rps, p99, errs = med[p]
    print(f"| {p} | {rps:,.0f} | {rps/med['netns'][0]:.2f}x | {p99:.2f} | {p99/med['netns'][1]:.2f}x | {errs} |")
PY
