#!/usr/bin/env bash
# saturn's web server as saturn runs it — an app whose files come through
# diskproc and whose sockets live in netproc — against nginx (one worker,
# sendfile on) and Go's net/http FileServer, with wrk as the client: the
# sample site's 1 KiB and 100 KiB files, 64 keep-alive connections. saturn
# runs on the kernel-socket backend and, where a TUN device can be made, on
# its own TCP stack (usertcp), which wrk then reaches from the namespace.
# Rounds are interleaved (every server once per round) so that a noisy
# neighbour hurts all alike; medians and per-round ratios to net/http at the
# end, then a cross-check of saturn's load generator against wrk on nginx.
#
#   bench/webserver.sh                         # 5 rounds of 10 s per case
#   RUNS=3 DURATION=5s bench/webserver.sh
#   NOCACHE=1 bench/webserver.sh               # and saturn-kernel-nocache:
#                                              # --content-cache 0, every
#                                              # body read through diskproc
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # RUNS, DURATION, CONNS, THREADS default there

./scripts/deps.sh bench
for c in wrk nginx curl; do command -v "$c" >/dev/null || [ -x "/usr/sbin/$c" ] || { echo "$c is not installed" >&2; exit 1; }; done
work=$(mktemp -d)
chmod 755 "$work" # nginx's workers run as nobody
pids=()
export SATURN_STATE_DIR="$work/state"
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	"$work/saturn" --instance bench-kernel supervisor stop >/dev/null 2>&1 || true
	"$work/saturn" --instance bench-usertcp supervisor stop >/dev/null 2>&1 || true
	"$work/saturn" --instance bench-nocache supervisor stop >/dev/null 2>&1 || true
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
go build -o "$work/saturn" ./cmd/saturn
go build -o "$work/benchserver" ./apps/webserver/internal/benchserver
go build -o "$work/lgrun" ./apps/loadgen/internal/lgrun

site="$work/site"
# Ports and saturn's address of this run's own, so that two runs (or another
# benchmark) on the machine never meet.
port=$(( 20000 + $$ % 20000 ))
net="10.78.$(( $$ % 250 ))"
instance() { # name backend port [extra webserver arguments, TOML-quoted]
	cat >"$work/$1.toml" <<CONF
[netproc]
backend = "$2"
netns = "satb$$"
address = "$net.2/24"
[diskproc]
root = "$site"
sample_site = true
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", ":$3"${4:+, $4}]
CONF
	"$work/saturn" --instance "$1" supervisor start --detach --config "$work/$1.toml"
}
declare -A url prefix
servers=()
instance bench-kernel kernel $((port + 1)) >/dev/null
url[saturn-kernel]="http://127.0.0.1:$((port + 1))"; prefix[saturn-kernel]=""; servers+=(saturn-kernel)
if [ -n "${NOCACHE:-}" ]; then
	instance bench-nocache kernel $((port + 6)) '"--content-cache", "0"' >/dev/null
	url[saturn-kernel-nocache]="http://127.0.0.1:$((port + 6))"; prefix[saturn-kernel-nocache]=""; servers+=(saturn-kernel-nocache)
fi
chmod -R a+rX "$site"
if instance bench-usertcp usertcp $((port + 5)) >"$work/usertcp.out" 2>&1; then
	url[saturn-usertcp]="http://$net.2:$((port + 5))"; prefix[saturn-usertcp]="ip netns exec satb$$"; servers+=(saturn-usertcp)
else
	echo "# usertcp: not measured: $(tail -1 "$work/usertcp.out")"
fi
"$work/benchserver" -impl nethttp -root "$site" -addr 127.0.0.1:$((port + 2)) >"$work/nethttp.log" 2>&1 &
pids+=($!)
url[nethttp]="http://127.0.0.1:$((port + 2))"; prefix[nethttp]=""; servers+=(nethttp)
nginx_conf "$work/nginx" "$site" $((port + 4))
nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
pids+=($!)
url[nginx]="http://127.0.0.1:$((port + 4))"; prefix[nginx]=""; servers+=(nginx)
wait_serving /files/1k.bin

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2), $(nginx -v 2>&1)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION, $RUNS interleaved runs per case; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: >"$results"
wrk_rounds "$results" /files 1k.bin 100k.bin

echo
ratio_table "$results" "1k.bin 100k.bin" nethttp nginx

echo
echo "# cross-check: saturn's loadgen (on kernel sockets) vs wrk, both against nginx, 1k.bin, -c$CONNS -d$DURATION, $RUNS runs"
crosscheck "${url[nginx]}/files/1k.bin"
