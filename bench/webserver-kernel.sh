#!/usr/bin/env bash
# saturn's web server against net/http's FileServer (and nginx, when it is
# installed) on loopback kernel sockets, with wrk as the client: 1 KiB and
# 100 KiB files, 64 keep-alive connections. Runs are interleaved (every
# server once per round) so that a noisy neighbour hurts all alike; medians
# of requests/s and the ratios to net/http are printed at the end.
#
# A preliminary measurement: the real one runs saturn's server over saturn's
# own stack (netproc) and diskproc.
#
#   bench/webserver-kernel.sh                 # 5 rounds of 10 s per case
#   RUNS=3 DURATION=5s bench/webserver-kernel.sh
#
# At the end it cross-checks saturn's load generator against wrk: both
# drive saturn's server for the 1 KiB file, interleaved, and the ratio of
# their median requests/s is printed (the issue asks for agreement within
# 15%).
#
# Servers: saturn (apps/webserver over os.DirFS), nethttp (http.FileServer
# over http.Dir: sendfile, the usual deployment), nethttp-fs (http.FileServer
# over http.FS(os.DirFS): files through io/fs only, saturn's constraint),
# nginx (one worker, sendfile on, access log off).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh # RUNS, DURATION, CONNS, THREADS default there

./scripts/deps.sh bench
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
work=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/site"
head -c 1024 /dev/urandom >"$work/site/1k.bin"
head -c 102400 /dev/urandom >"$work/site/100k.bin"
chmod 755 "$work" "$work/site" # nginx's workers run as nobody
chmod 644 "$work/site"/*
go build -o "$work/benchserver" ./apps/webserver/internal/benchserver
go build -o "$work/lgrun" ./apps/loadgen/internal/lgrun

declare -A url prefix
port=$(( 20000 + $$ % 20000 )) # this run's own: two runs never meet
start() { # name impl port
	"$work/benchserver" -impl "$2" -root "$work/site" -addr "127.0.0.1:$3" >"$work/$1.log" 2>&1 &
	pids+=($!)
	url[$1]="http://127.0.0.1:$3"
}
start saturn saturn $((port + 1))
start nethttp nethttp $((port + 2))
start nethttp-fs nethttp-fs $((port + 3))
servers=(saturn nethttp nethttp-fs)
if command -v nginx >/dev/null; then
	nginx_conf "$work/nginx" "$work/site" $((port + 4))
	nginx -c "$work/nginx/nginx.conf" -e "$work/nginx/error.log" &
	pids+=($!)
	url[nginx]=http://127.0.0.1:$((port + 4))
	servers+=(nginx)
fi
wait_serving /1k.bin

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "# wrk -t$THREADS -c$CONNS -d$DURATION, $RUNS interleaved runs per case; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
results="$work/results"
: >"$results"
wrk_rounds "$results" "" 1k.bin 100k.bin

echo
ratio_table "$results" "1k.bin 100k.bin" nethttp

echo
echo "# cross-check: saturn loadgen vs wrk, saturn server, 1k.bin, -c$CONNS -d$DURATION, $RUNS runs"
crosscheck "${url[saturn]}/1k.bin"
