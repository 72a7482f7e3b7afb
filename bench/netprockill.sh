#!/usr/bin/env bash
# What a kill of netproc costs the web server's clients, under each kind of
# load alone: KILLS `saturn kill netproc`, GAP apart, first while the load
# generator keeps CONNS keep-alive connections busy, then while ab makes a
# new connection per request (CONNS at a time, no keep-alive: issue 14's
# `ab -n 15000 -c 8`). Printed per load: the requests, the failed ones and
# their count per kill, and the blackout as the clients saw it (the longest
# request: the load generator's max latency, ab's longest request).
#
#   bench/netprockill.sh                          # usertcp, resume on (the default)
#   RESUME=false bench/netprockill.sh             # usertcp with resume off
#   BACKEND=kernel bench/netprockill.sh
#   KILLS=5 GAP=2 CONNS=8 bench/netprockill.sh
#
# Needs ab (apache2-utils), and root for usertcp (a TUN device and a
# namespace); on usertcp the load goes from the host to saturn's address by
# the host route, after `ip route get` says it leads into the instance's
# own link. Everything it makes goes when it ends.
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-3}
GAP=${GAP:-2}
CONNS=${CONNS:-8}
BACKEND=${BACKEND:-usertcp}
RESUME=${RESUME:-true}
command -v ab >/dev/null || { echo "bench/netprockill.sh: needs ab (apt-get install apache2-utils)" >&2; exit 1; }
. bench/webinstance.sh
web_setup kill
policy='backoff = "20ms"
max_backoff = "40ms"
intensity = 1000
period = "60s"'
resume=""
[ "$BACKEND" = usertcp ] && resume="resume = $RESUME"
web_start bench/netprockill.sh kill "$resume
$policy"
for _ in $(seq 100); do curl -sf -o /dev/null "$url" && break; sleep 0.1; done

# kills KILLS times, GAP seconds apart, after GAP.
kills() { for _ in $(seq "$KILLS"); do sleep "$GAP"; "$saturn" kill netproc >/dev/null; done; }
secs=$(( (KILLS + 1) * GAP + 1 ))

echo "# $(date -u +%FT%TZ) $(uname -sr), $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg); backend $BACKEND$( [ "$BACKEND" = usertcp ] && echo ", resume $RESUME"); $KILLS kills of netproc ${GAP}s apart per load, $CONNS clients"
echo "| load | requests | failed | failed per kill | blackout (longest request) |"
echo "| --- | --- | --- | --- | --- |"

"$saturn" app loadgen --kernel --json -c "$CONNS" -d "${secs}s" --timeout 30s "$url" >"$work/load.json" &
load=$!
kills
wait "$load"
python3 - "$KILLS" "$work/load.json" <<'PY'
import json, sys
kills, r = int(sys.argv[1]), json.load(open(sys.argv[2]))
errs = sum(r["errors"].values()) + sum(v for k, v in r["status_codes"].items() if not 200 <= int(k) < 400)
print(f"| keep-alive (saturn app loadgen -c {r['connections']}) | {r['requests']:,} | {errs} {r['errors']} | {errs / kills:.1f} | {r['latency']['max_ns'] / 1e6:.0f} ms |")
PY

ab -r -s 30 -c "$CONNS" -t "$secs" -n 10000000 "$url" >"$work/ab.txt" 2>&1 &
abp=$!
kills
wait "$abp" || true
python3 - "$KILLS" "$CONNS" "$work/ab.txt" <<'PY'
import re, sys
kills, conns, t = int(sys.argv[1]), sys.argv[2], open(sys.argv[3]).read()
def field(name):
    m = re.search(rf"^{name}:\s+(\d+)", t, re.M)
    return int(m.group(1)) if m else 0
done, failed, non2xx = field("Complete requests"), field("Failed requests"), field("Non-2xx responses")
m = re.search(r"100%\s+(\d+)", t)
longest = m.group(1) + " ms" if m else "?"
detail = re.search(r"\(Connect: (\d+), Receive: (\d+), Length: (\d+), Exceptions: (\d+)\)", t)
why = detail.group(0) if detail else ""
print(f"| a new connection per request (ab -c {conns}) | {done:,} | {failed + non2xx} {why} | {(failed + non2xx) / kills:.1f} | {longest} |")
PY
