#!/usr/bin/env bash
# What `saturn upgrade` costs each component: for each of web, diskproc and
# netproc, ROUNDS upgrades (to a copy of the same saturn binary) while the
# load generator keeps CONNS keep-alive connections busy (closed loop, 1 KiB
# file, kernel sockets) and wrk, beside it, FRESH connections that each make
# one request (Connection: close; 0: no wrk), and the upgrade's own report
# of its blackout (from the old incarnation's exit to the new one's
# readiness). Printed: per component, the failed requests per upgrade of
# each load (its errors over the run, divided by the upgrades) and the
# median and worst blackout.
#
#   bench/upgrade.sh                          # kernel backend, 5 upgrades each
#   BACKEND=usertcp bench/upgrade.sh          # saturn's own stack (needs TUN)
#   ROUNDS=3 CONNS=8 bench/upgrade.sh
#   COMPONENTS=web bench/upgrade.sh           # only these components
#   FRESH=0 bench/upgrade.sh                  # keep-alive load only
#
# Needs root for usertcp (a TUN device and a namespace); on usertcp the load
# goes from the host to saturn's address by the host route, after `ip route
# get` says it leads into the instance's own link. Everything it makes goes
# when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${ROUNDS:-5}
CONNS=${CONNS:-16}
FRESH=${FRESH:-4}
BACKEND=${BACKEND:-kernel}
. bench/webinstance.sh
web_setup upgrade
cp "$saturn" "$work/saturn-next"
web_start bench/upgrade.sh up ""

if [ "$FRESH" -gt 0 ] && ! command -v wrk >/dev/null; then
	echo "bench/upgrade.sh: no wrk for the connection-per-request load (scripts/deps.sh bench); FRESH=0" >&2
	FRESH=0
fi
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); backend $BACKEND; $ROUNDS upgrades each under $CONNS keep-alive connections and $FRESH making one request each"
echo "| component | upgrades | failed per upgrade, keep-alive | failed per upgrade, a connection per request | blackout median | blackout worst | requests (keep-alive, per request) |"
echo "| --- | --- | --- | --- | --- | --- | --- |"
for comp in ${COMPONENTS:-web diskproc netproc}; do
	secs=$(( ROUNDS * 2 + 3 ))
	"$saturn" app loadgen --kernel --json -c "$CONNS" -d "${secs}s" "$url" >"$work/load.json" &
	load=$!
	: >"$work/wrk.txt"
	if [ "$FRESH" -gt 0 ]; then
		wrk -t1 -c"$FRESH" -d"${secs}s" -H "Connection: close" "$url" >"$work/wrk.txt" 2>&1 &
		fresh=$!
	fi
	sleep 2
	: >"$work/blackouts"
	for i in $(seq "$ROUNDS"); do
		bin="$work/saturn-next"; [ $(( i % 2 )) = 0 ] && bin="$work/saturn"
		"$saturn" upgrade "$comp" --binary "$bin" | sed -n 's/.*blackout \([0-9.]*\)\(m\?s\).*/\1 \2/p' >>"$work/blackouts"
		sleep 1.5
	done
	wait "$load"
	[ "$FRESH" -gt 0 ] && wait "$fresh"
	python3 - "$comp" "$ROUNDS" "$work/load.json" "$work/blackouts" "$work/wrk.txt" <<'PY'
import json, re, sys, statistics as st
comp, rounds, load, bl, wrk = sys.argv[1], int(sys.argv[2]), json.load(open(sys.argv[3])), sys.argv[4], open(sys.argv[5]).read()
ms = [float(v) * (1000 if unit == "s" else 1) for v, unit in (l.split() for l in open(bl) if l.strip())]
errs = sum(load["errors"].values())
fresh, freq = "-", "-"
if wrk:
    m = re.search(r"(\d+) requests in", wrk)
    freq = f"{int(m.group(1)):,}" if m else "?"
    se = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", wrk)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", wrk)
    kinds = {k: int(v) for k, v in zip(("connect", "read", "write", "timeout"), se.groups())} if se else {}
    if bad:
        kinds["status"] = int(bad.group(1))
    fresh = f"{sum(kinds.values()) / rounds:g}" + (f" ({kinds})" if kinds else "")
print(f"| {comp} | {len(ms)} | {errs / rounds:g} ({load['errors']}) | {fresh} | {st.median(ms):.0f} ms | {max(ms):.0f} ms | {load['requests']:,}, {freq} |")
PY
done
