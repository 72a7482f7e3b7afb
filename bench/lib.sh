# What the web server benchmarks (bench/webserver.sh, bench/webserver-kernel.sh)
# share: nginx's config, waiting for the servers, interleaved wrk rounds, the
# table of medians and ratios, and the cross-check of saturn's load generator
# against wrk. Sourced, not run; bench/loadgen.sh and bench/netproc.sh
# source it for its settings too.
#
# The functions read the settings RUNS, DURATION, CONNS and THREADS, which
# default to what both scripts document (5 rounds of 10 s, 64 connections,
# 2 wrk threads), and the caller's own:
# the servers to measure in the array servers, each one's base URL in the
# associative array url and the command that wrk and curl run under in
# prefix (empty, or `ip netns exec NS` for a server inside a namespace);
# $work/lgrun, the load generator's runner. Every measured command runs under
# flock $LOCK, so that benchmarks run by different people on this machine
# never overlap.

LOCK=${LOCK:-/tmp/saturn-bench.lock}
RUNS=${RUNS:-5}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-64}
THREADS=${THREADS:-2}

# median prints the median of the numbers on standard input, one a line.
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# nginx_conf DIR ROOT PORT writes DIR/nginx.conf: one worker in the
# foreground, sendfile on, no access log, serving ROOT on 127.0.0.1:PORT,
# every temporary path in DIR.
nginx_conf() {
	mkdir -p "$1"
	cat >"$1/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log;
events { worker_connections 1024; }
http {
	access_log off;
	sendfile on;
	tcp_nopush on;
	keepalive_requests 1000000;
	client_body_temp_path $1;
	proxy_temp_path $1;
	fastcgi_temp_path $1;
	uwsgi_temp_path $1;
	scgi_temp_path $1;
	server { listen 127.0.0.1:$3; root $2; }
}
CONF
}

# wait_serving PATH waits until every server answers PATH, 10 s at the most
# each, and fails the script if one does not.
wait_serving() {
	local s ok
	for s in "${servers[@]}"; do
		ok=
		for _ in $(seq 100); do ${prefix[$s]:-} curl -sf -o /dev/null "${url[$s]}$1" && ok=1 && break; sleep 0.1; done
		[ -n "$ok" ] || { echo "$s does not serve $1" >&2; exit 1; }
	done
}

# wrk_rounds RESULTS PATH FILE... measures every server on PATH/FILE for each
# FILE, RUNS rounds, every server once a round (interleaved, so that a noisy
# neighbour hurts all alike), appends "FILE SERVER REQ/S ROUND" lines to
# RESULTS, and prints the load average when it ends. An error response voids
# the comparison and fails the script; socket errors (timeouts on a loaded
# machine) are reported.
wrk_rounds() {
	local results=$1 path=$2 file run s out rps
	shift 2
	for file in "$@"; do
		for run in $(seq "$RUNS"); do
			for s in "${servers[@]}"; do
				out=$(flock "$LOCK" ${prefix[$s]:-} wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s "${url[$s]}$path/$file")
				if grep -q 'Non-2xx' <<<"$out"; then
					echo "$s: error responses while serving $file:" >&2; echo "$out" >&2; exit 1
				fi
				if grep -q 'Socket errors' <<<"$out"; then
					echo "  ($s: $(grep 'Socket errors' <<<"$out" | sed 's/^ *//'))"
				fi
				rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
				echo "$file $s run $run: $rps req/s"
				echo "$file $s $rps $run" >>"$results"
			done
		done
	done
	echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}

# ratio_table RESULTS "FILE..." BASE... prints a Markdown table: for each file
# and server, the median req/s, the runs, and against each BASE server the
# median of per-round ratios (each server against BASE in the same round),
# which a drifting background load disturbs less than a ratio of medians.
ratio_table() {
	local results=$1 files=$2 file s b m n row
	local head="| file | server | median req/s | runs |" rule="| --- | --- | --- | --- |"
	shift 2
	for b in "$@"; do
		case $b in
		nethttp) head+=" vs net/http (median of per-round ratios) |" ;;
		*) head+=" vs $b |" ;;
		esac
		rule+=" --- |"
	done
	echo "$head"
	echo "$rule"
	for file in $files; do
		for s in "${servers[@]}"; do
			m=$(awk -v f="$file" -v s="$s" '$1 == f && $2 == s { print $3 }' "$results" | median)
			n=$(awk -v f="$file" -v s="$s" '$1 == f && $2 == s' "$results" | wc -l)
			row=$(printf '| %s | %s | %.0f | %d |' "$file" "$s" "$m" "$n")
			for b in "$@"; do
				row+=$(printf ' %.2fx |' "$(awk -v f="$file" -v s="$s" -v b="$b" '$1 == f && $2 == b { base[$4] = $3 } $1 == f && $2 == s { v[$4] = $3 }
					END { for (k in v) if (base[k] > 0) print v[k] / base[k] }' "$results" | median)")
			done
			echo "$row"
		done
	done
}

# crosscheck URL drives URL with wrk and with saturn's load generator
# (on kernel sockets), RUNS rounds of each, interleaved, and prints both
# medians and the ratio loadgen/wrk: as a ratio of medians and as the median
# of per-round ratios.
crosscheck() {
	local cross=$work/cross w l mw ml run
	: >"$cross"
	for run in $(seq "$RUNS"); do
		w=$(flock "$LOCK" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --timeout 10s "$1" | awk '/^Requests\/sec/ { print $2 }')
		l=$(flock "$LOCK" "$work/lgrun" -c "$CONNS" -d "$DURATION" -json "$1" | awk -F': ' '/"requests_per_sec"/ { gsub(",", "", $2); print $2 }')
		echo "run $run: wrk $w req/s, loadgen $l req/s"
		echo "$w $l" >>"$cross"
	done
	mw=$(cut -d' ' -f1 "$cross" | median)
	ml=$(cut -d' ' -f2 "$cross" | median)
	awk -v w="$mw" -v l="$ml" 'BEGIN { printf "wrk %.0f req/s, loadgen %.0f req/s: loadgen/wrk = %.2f (ratio of medians)\n", w, l, l / w }'
	echo "loadgen/wrk = $(awk '$1 > 0 { print $2 / $1 }' "$cross" | median) (median of per-round ratios)"
	echo "# load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
}
