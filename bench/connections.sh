#!/usr/bin/env bash
# What idle keep-alive connections cost saturn's web server, and what they
# do to everyone else's latency, against Go's net/http FileServer measured
# the same way in the same run. For each backend in BACKENDS, a fresh
# instance (netproc, diskproc, and the web server as the app "web", with a
# 30-minute idle timeout, on the sample site):
#
#   1. baseline: PROBE_N requests of "/" (index.html, 777 bytes), each on a
#      new connection (Connection: close), PROBE_C at a time; latency is dial
#      to the body's last byte (bench/idleconns probe);
#   2. memory before: the sum of Pss (/proc/PID/smaps_rollup) over every
#      process of the instance (supervisor, netproc, diskproc, web), so that
#      the shared-memory rings two processes map count once; and the
#      kernel's Slab (/proc/meminfo);
#   3. CONNS (usertcp) or KCONNS (kernel) connections, each making one GET
#      and then held open and idle by several client processes (at most
#      19,000 connections each: RLIMIT_NOFILE is 20,000 here and root cannot
#      raise it without CAP_SYS_RESOURCE); the time it took to open them all;
#   4. memory after, per connection;
#   5. the probe again with them held: p99 against the baseline's (target:
#      at most 3x), and every request must succeed; then the clients count
#      the held connections the server closed (none should be: the idle
#      timeout is 30 minutes).
#
# Then the peer: `idleconns serve` (net/http's FileServer, 10-minute
# IdleTimeout) on loopback, serving the same site, through the same five
# steps with the same number of connections; its memory is the Pss of its
# process(es). One process has 20,000 descriptors, so above 15,000
# connections the peer is several processes sharing one port
# (SO_REUSEPORT), and their Pss is summed.
#
# On usertcp the clients run inside the instance's network namespace
# (ip netns exec), from one source address per 25,000 connections added to
# the namespace's side of the TUN device, with the namespace's port range
# widened to 1024-65535; the server is saturn's address there, port 8080.
# On kernel the clients run on loopback (127.0.0.1, then 127.0.0.11 and up
# when one address's ports run short) against 127.0.0.1:8080 (or the next
# free port). No traffic leaves loopback or this script's own namespace.
#
# Slab growth: with usertcp it is the clients' sockets only (saturn's side
# of each connection lives in netproc's memory, counted in Pss); with the
# kernel backend and with net/http both ends are kernel sockets, so it is
# the server's and the client's together.
#
#   bench/connections.sh                           # usertcp 100,000, kernel 15,000
#   CONNS=20000 KCONNS=5000 SKIP_PEER=1 bench/connections.sh
#   BACKENDS=kernel KCONNS=400 bench/connections.sh
#
# Knobs (environment):
#   BACKENDS       which netproc backends (default "usertcp kernel")
#   CONNS          connections held on usertcp (default 100000)
#   KCONNS         connections held on kernel (default 15000; netproc holds
#                  them as descriptors, so at most about 19,000)
#   PROBE_N        requests per probe (default 1000); PROBE_C at once (8)
#   SKIP_PEER=1    skip net/http
#   HOLD_TIMEOUT   seconds allowed to open every connection (default 600)
#
# Needs root (a TUN device and a network namespace for usertcp; extra
# addresses and a sysctl inside that namespace). Every measured command runs
# under flock /tmp/saturn-bench.lock. Everything it makes (instances, the
# namespace, processes, the temporary folder) is removed on exit. It exits
# 1 if a connection could not be opened or held, or a probe request failed.
set -euo pipefail
cd "$(dirname "$0")/.."
BACKENDS=${BACKENDS:-usertcp kernel}
CONNS=${CONNS:-100000}
KCONNS=${KCONNS:-15000}
PROBE_N=${PROBE_N:-1000}
PROBE_C=${PROBE_C:-8}
SKIP_PEER=${SKIP_PEER:-}
HOLD_TIMEOUT=${HOLD_TIMEOUT:-600}
LOCK=/tmp/saturn-bench.lock
PER_PROC=19000      # connections per client process (RLIMIT_NOFILE 20,000)
PER_SERVE=15000     # connections per net/http process, with a margin for uneven SO_REUSEPORT hashing
PER_SRC=25000       # connections per source address
PATH_GET=/          # the sample site's index.html
PROBE_FLAGS=(-n "$PROBE_N" -c "$PROBE_C" -path "$PATH_GET" -timeout 10s -max-errors 10)
HOLD_FLAGS=(-path "$PATH_GET" -parallel 64 -timeout 30s -max-errors 64)

me=connections.sh
if [ "$(id -u)" -ne 0 ]; then
	echo "$me: needs root (TUN device, network namespace, addresses and sysctls inside it)" >&2
	exit 1
fi
for b in $BACKENDS; do
	case $b in
	usertcp) [ -e /dev/net/tun ] || { echo "$me: no /dev/net/tun here: try BACKENDS=kernel" >&2; exit 1; } ;;
	kernel) ;;
	*) echo "$me: BACKENDS: unknown backend $b (want usertcp and/or kernel)" >&2; exit 1 ;;
	esac
done
for cmd in ip ss; do command -v "$cmd" >/dev/null || ./scripts/deps.sh; done
for cmd in ip ss flock awk sysctl timeout; do
	command -v "$cmd" >/dev/null || { echo "$me: $cmd is not installed" >&2; exit 1; }
done

# Unique names: two runs of this script (or the tests) never meet.
id=$$
ns="ic$id-s" # the usertcp instance's namespace (made and removed by netproc)
work=$(mktemp -d)
state="$work/state"
saturn="$work/saturn"
tool="$work/idleconns"
pids=()      # our background processes: clients and net/http servers
instances=() # saturn instances started
compids=()   # every pid an instance reported, killed at exit if stop left it
cleanup() {
	set +e
	# ours: the pid still runs a binary from $work (not a reused pid)
	ours() { grep -qF "$work/" "/proc/$1/cmdline" 2>/dev/null; }
	local live=() p i
	for p in "${pids[@]}"; do ours "$p" && live+=("$p"); done
	for p in "${live[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${live[@]}"; do timeout 30 tail --pid="$p" -f /dev/null 2>/dev/null; done
	for i in "${instances[@]}"; do
		timeout 60 "$saturn" supervisor stop --state-dir "$state" --instance "$i" >/dev/null 2>&1
	done
	for p in "${compids[@]}"; do ours "$p" && kill -9 "$p" 2>/dev/null; done
	ip netns list 2>/dev/null | grep -qw "^$ns" && ip netns del "$ns"
	rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lock() {
	exec 9>"$LOCK"
	flock -n 9 || { echo "# waiting for $LOCK (another benchmark is running)"; flock 9; }
}
unlock() { flock -u 9; exec 9>&-; }

go build -o "$saturn" ./cmd/saturn
go build -o "$tool" ./bench/idleconns

echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(go version | cut -d' ' -f3), $(awk '/^MemTotal:/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)"
echo "# BACKENDS=\"$BACKENDS\" CONNS=$CONNS KCONNS=$KCONNS PROBE_N=$PROBE_N PROBE_C=$PROBE_C SKIP_PEER=${SKIP_PEER:-0}; load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# RLIMIT_NOFILE is $(ulimit -Sn) (hard $(ulimit -Hn)) and cannot be raised without CAP_SYS_RESOURCE: at most $PER_PROC connections per client process, $PER_SERVE per net/http process"

# A /24 that nothing on this machine routes or holds: 10.A.B.0, A and B
# from our pid, moved on until free.
pick_subnet() {
	local taken defvia i a b r
	taken=$(ip -4 route show table all; ip -4 -o addr show)
	defvia=$(ip -4 route show default | awk '{ for (i = 1; i < NF; i++) if ($i == "via") { print $(i + 1); exit } }')
	for i in $(seq 0 500); do
		a=$(((id + i) % 200 + 40)) b=$(((id / 200 + 7 * i) % 250 + 1))
		grep -qF "10.$a.$b." <<<"$taken" && continue
		# Not inside a wider route either: it must go the default way.
		r=$(ip -4 route get "10.$a.$b.2" 2>/dev/null || true)
		if [ -n "$r" ] && { [ -z "$defvia" ] || ! grep -qF "via $defvia " <<<"$r"; }; then continue; fi
		echo "10.$a.$b"
		return
	done
	echo "$me: found no free 10.x.y.0/24" >&2
	return 1
}

free_port() { # the first port of the list nothing listens on
	local p
	for p; do
		[ -z "$(ss -Hltn "sport = :$p")" ] && { echo "$p"; return; }
	done
	echo "$me: ports $* are all taken" >&2
	return 1
}

# The host's ephemeral port range, for loopback clients.
read -r port_lo port_hi </proc/sys/net/ipv4/ip_local_port_range
host_ports=$((port_hi - port_lo + 1))

# loopback_srcs N: source addresses for N loopback connections to one
# address and port: 127.0.0.11 and up, one per PER_SRC connections (or per
# the port range, less a margin, if that is smaller). The probes come from
# 127.0.0.2, a client of their own, whose ports the held connections do
# not crowd (a connect's free-port search slows as the ports of its source
# address fill up, which would measure the client, not the server).
loopback_srcs() {
	local n=$1 per i out=
	per=$((host_ports - 2000 < PER_SRC ? host_ports - 2000 : PER_SRC))
	for i in $(seq $(((n + per - 1) / per))); do out+="${out:+,}127.0.0.$((10 + i))"; done
	echo "$out"
}

# status_pids INSTANCE: "name pid" for the supervisor and each component,
# from saturn status --json (read with awk: no jq here).
status_pids() {
	"$saturn" status --json --state-dir "$state" --instance "$1" | awk '
		/"supervisor_pid":/ { gsub(/[^0-9]/, "", $2); print "supervisor", $2 }
		/^    {/ { name = "" }
		/^      "name":/ && name == "" { name = $2; gsub(/[",]/, "", name) }
		/^      "pid":/ && name != "" { gsub(/[^0-9]/, "", $2); print name, $2 }'
}

# pss PID...: the sum of their Pss in KiB; fails if one is gone.
pss() {
	local t=0 p v
	for p; do
		v=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || true)
		[ -n "$v" ] || { echo "$me: process $p is gone" >&2; return 1; }
		t=$((t + v))
	done
	echo "$t"
}
# pss_each PID...: "name KiB, ..." for the log.
declare -A pidname
pss_each() {
	local p sep=
	for p; do
		printf '%s%s %s' "$sep" "${pidname[$p]:-$p}" "$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null || echo gone)"
		sep=", "
	done
}
slab() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
# settle: wait (up to 20 s) until Slab moves less than 1 MiB in a second,
# so that what the previous measurement freed is not counted in this one.
settle() {
	local a b i
	a=$(slab)
	for i in $(seq 20); do
		sleep 1
		b=$(slab)
		[ $((b > a ? b - a : a - b)) -lt 1024 ] && return 0
		a=$b
	done
}
per_conn() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { if (n > 0) printf "%.0f", (b - a) * 1024 / n; else print "-" }'; }
json() { sed -n "s/.*\"$2\":\\([0-9]*\\).*/\\1/p" <<<"$1"; }
json_str() { sed -n "s/.*\"$2\":\"\\([^\"]*\\)\".*/\\1/p" <<<"$1"; }

# probe LABEL PREFIX... -- ARGS: run the probe (PREFIX is "ip netns exec NS"
# or nothing), print its line, and leave it in $probe_out; returns its
# status.
probe() {
	local label=$1 rc=0
	shift
	local prefix=()
	while [ "$1" != -- ]; do prefix+=("$1"); shift; done
	shift
	# In the background and waited for, so that a signal to this script is
	# acted on at once (and the trap kills the probe).
	"${prefix[@]}" "$tool" probe "${PROBE_FLAGS[@]}" ${probe_src:+-src "$probe_src"} "$@" >"$work/probe.out" 2>"$work/probe.log" 9>&- &
	pids+=($!)
	wait $! || rc=$?
	probe_out=$(head -1 "$work/probe.out")
	echo "#   $label: $probe_out"
	[ -n "$probe_out" ] || { probe_out='{"errors":1,"first_error":"no output"}'; cat "$work/probe.log" >&2; }
	return $rc
}

# hold_all TAG TOTAL ADDR SRCS PREFIX...: open TOTAL connections from
# ceil(TOTAL / PER_PROC) client processes and wait for each one's
# `held N`. Sets hold_pids, held, open_secs; on failure returns 1 with the
# reason in hold_err (and the clients killed).
hold_all() {
	local tag=$1 total=$2 addr=$3 srcs=$4
	shift 4
	local nproc=$(((total + PER_PROC - 1) / PER_PROC)) left=$total i n t0 deadline lines p next_report
	hold_pids=() held=0 open_secs=- hold_err=
	t0=$(date +%s.%N)
	for ((i = 0; i < nproc; i++)); do
		n=$((left / (nproc - i)))
		left=$((left - n))
		"$@" "$tool" hold -addr "$addr" -n "$n" ${srcs:+-src "$srcs"} "${HOLD_FLAGS[@]}" \
			>"$work/$tag-hold$i.out" 2>"$work/$tag-hold$i.log" 9>&- &
		hold_pids+=($!)
		pids+=($!)
	done
	deadline=$((SECONDS + HOLD_TIMEOUT)) next_report=$((SECONDS + 30))
	echo "#   $tag: opening $total connections from $nproc client process(es)"
	while :; do
		lines=$(cat "$work/$tag"-hold*.out | grep -c '^held' || true)
		[ "$lines" -eq "$nproc" ] && break
		for ((i = 0; i < nproc; i++)); do
			p=${hold_pids[i]}
			if ! kill -0 "$p" 2>/dev/null && ! grep -q '^held' "$work/$tag-hold$i.out"; then
				hold_err="client $i of $nproc failed: $(tail -1 "$work/$tag-hold$i.log")"
			fi
		done
		if [ -z "$hold_err" ] && [ $SECONDS -ge $deadline ]; then
			hold_err="not every connection open after $HOLD_TIMEOUT s (HOLD_TIMEOUT); $lines of $nproc clients done; progress: $(tail -qn1 "$work/$tag"-hold*.log | tr '\n' ';')"
		fi
		if [ -n "$hold_err" ]; then
			stop_clients
			return 1
		fi
		if [ $SECONDS -ge $next_report ]; then
			# The clients report every 10,000 on stderr.
			echo "#   $tag: after $((SECONDS - deadline + HOLD_TIMEOUT)) s: $(awk '$4 == "of" && $6 == "held" { n[FILENAME] = $3 } END { s = 0; for (f in n) s += n[f]; print s }' "$work/$tag"-hold*.log) held (counted by 10,000 per client), $lines of $nproc clients done"
			next_report=$((SECONDS + 30))
		fi
		sleep 0.2
	done
	open_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	held=$(cat "$work/$tag"-hold*.out | awk '/^held/ { s += $2 } END { print s + 0 }')
}

# check_held TAG: ask every client to look at its connections (SIGUSR1) and
# sum their `open K closed M`; sets still_open and closed.
check_held() {
	local tag=$1 i p deadline
	for p in "${hold_pids[@]}"; do kill -USR1 "$p"; done
	deadline=$((SECONDS + 60))
	for ((i = 0; i < ${#hold_pids[@]}; i++)); do
		until grep -q '^open' "$work/$tag-hold$i.out"; do
			[ $SECONDS -lt $deadline ] || { echo "$me: client $i did not answer SIGUSR1" >&2; break; }
			sleep 0.1
		done
	done
	still_open=$(cat "$work/$tag"-hold*.out | awk '/^open/ { s += $2 } END { print s + 0 }')
	closed=$(cat "$work/$tag"-hold*.out | awk '/^open/ { s += $4 } END { print s + 0 }')
}

stop_clients() {
	local p
	for p in "${hold_pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${hold_pids[@]}"; do timeout 60 tail --pid="$p" -f /dev/null || true; done
	hold_pids=()
}

# measure RUN SERVER TOTAL ADDR SRCS "PID..." PREFIX...: steps 1 to 5
# against a running server whose processes are PIDS; one row of results.
failures=()
rows=()
measure() {
	local run=$1 server=$2 total=$3 addr=$4 srcs=$5 mpids=$6
	shift 6
	local tag="$run-${server//\//}" base base_p50 base_p99 idle_p99 ratio errs=0 m0 m1 s0 s1 growth sgrowth each0
	held=0 open_secs=- still_open=- closed=-
	settle
	lock
	if ! probe "$tag baseline probe" "$@" -- -addr "$addr"; then
		unlock
		failures+=("$tag: the baseline probe failed: $(json_str "$probe_out" first_error)")
		rows+=("$run $server 0 - - - - - - - $(json "$probe_out" errors) -")
		return
	fi
	base=$probe_out
	base_p50=$(json "$base" p50_us) base_p99=$(json "$base" p99_us)
	# shellcheck disable=SC2086 # mpids is a list
	m0=$(pss $mpids) s0=$(slab)
	# shellcheck disable=SC2086
	each0=$(pss_each $mpids)
	if ! hold_all "$tag" "$total" "$addr" "$srcs" "$@"; then
		failures+=("$tag: holding $total connections: $hold_err")
		echo "#   $tag: holding $total connections failed: $hold_err"
		# Does it still answer at all, once the clients are gone?
		probe "$tag probe after the failure (20 requests)" "$@" -- -addr "$addr" -n 20 -max-errors 3 || true
		unlock
		rows+=("$run $server $total - - - $base_p50 $base_p99 - - hold-failed -")
		return
	fi
	sleep 2 # the last responses' buffers and timers settle
	# shellcheck disable=SC2086
	if ! m1=$(pss $mpids); then
		failures+=("$tag: a server process died while $held connections were held ($(pss_each $mpids))")
		unlock
		stop_clients
		rows+=("$run $server $held $open_secs - - $base_p50 $base_p99 - - died -")
		return
	fi
	s1=$(slab)
	# shellcheck disable=SC2086
	echo "#   $tag: Pss in KiB before: $each0; after: $(pss_each $mpids)"
	growth=$(per_conn "$m0" "$m1" "$held") sgrowth=$(per_conn "$s0" "$s1" "$held")
	echo "#   $tag: $held connections held in $open_secs s; Pss $m0 -> $m1 KiB ($growth B/conn), slab $s0 -> $s1 KiB ($sgrowth B/conn)"
	if ! probe "$tag probe with $held idle" "$@" -- -addr "$addr"; then
		failures+=("$tag: the probe with $held idle connections failed: $(json "$probe_out" errors) errors of $(json "$probe_out" requests) requests; first: $(json_str "$probe_out" first_error)")
	fi
	idle_p99=$(json "$probe_out" p99_us)
	errs=$(json "$probe_out" errors)
	check_held "$tag"
	echo "#   $tag: after the probe the clients find $still_open open, $closed closed by the server"
	[ "$closed" = 0 ] || failures+=("$tag: the server closed $closed of $held idle connections")
	unlock
	stop_clients
	ratio=$(awk -v a="$base_p99" -v b="$idle_p99" 'BEGIN { if (a > 0 && b > 0) printf "%.2f", b / a; else print "-" }')
	rows+=("$run $server $held $open_secs $growth $sgrowth $base_p50 $base_p99 ${idle_p99:--} $ratio $errs $closed")
}

# start_instance BACKEND TOTAL: a fresh instance; sets inst, addr, site,
# where (the clients' command prefix), srcs and inst_pids.
start_instance() {
	local b=$1 total=$2 port subnet dev i n nsrc conf
	inst="conns-$id-$b"
	conf="$work/$b.toml"
	where=() srcs=
	if [ "$b" = usertcp ]; then
		subnet=$(pick_subnet)
		port=8080
	else
		port=$(free_port 8080 $(seq 18080 18099))
	fi
	{
		printf '[netproc]\nbackend = "%s"\n' "$b"
		[ "$b" = usertcp ] && printf 'netns = "%s"\naddress = "%s.2/24"\nmax_connections = %d\n' "$ns" "$subnet" $((total + 20000 > 131072 ? total + 20000 : 131072))
		# The web server's limits in netproc, with room: its sockets, and
		# their memory as netproc counts it (2 KiB a usertcp connection,
		# 6 KiB a kernel socket, and what their buffers hold).
		printf 'max_sockets = %d\nmax_memory = %d\n' $((total + 1024)) $(((total + 1024) * 8192 > 1 << 30 ? (total + 1024) * 8192 : 1 << 30))
		printf '\n[diskproc]\nsample_site = true\n'
		printf '\n[[app]]\nname = "web"\ncommand = ["%s", "app", "webserver", "--root", "/", "--listen", ":%d", "--idle-timeout", "30m"]\nrestart = "always"\n' "$saturn" "$port"
	} >"$conf"
	instances+=("$inst")
	if ! "$saturn" supervisor start --detach --state-dir "$state" --instance "$inst" --config "$conf" >"$work/$inst.start" 2>&1; then
		echo "$me: instance $inst did not start:" >&2
		cat "$work/$inst.start" >&2
		exit 1
	fi
	inst_pids=$(status_pids "$inst" | awk '{ print $2 }' | tr '\n' ' ')
	for i in $inst_pids; do compids+=("$i"); done
	while read -r n i; do pidname[$i]=$n; done < <(status_pids "$inst")
	echo "# $b: instance $inst, pids: $(status_pids "$inst" | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')"
	# diskproc's root as the supervisor resolved it (a relative root is
	# beside the config file): the site the peer serves too.
	site=$(awk '/^\[/ { sec = $0 } sec == "[diskproc]" && $1 == "root" { v = $3; gsub(/\047|"/, "", v); print v }' "$state/$inst/config.toml")
	[ -f "$site/index.html" ] || { echo "$me: no sample site in $site" >&2; exit 1; }
	if [ "$b" = usertcp ]; then
		addr="$subnet.2:$port"
		where=(ip netns exec "$ns")
		dev=$(ip -n "$ns" -o -4 addr show | awk -v a="$subnet.1/" 'index($4, a) == 1 { print $2 }')
		[ -n "$dev" ] || { echo "$me: no $subnet.1 in namespace $ns" >&2; exit 1; }
		ip -n "$ns" route get "$subnet.2" | grep -qw "dev $dev" || { echo "$me: $subnet.2 does not route into $dev in $ns" >&2; exit 1; }
		# One source address per PER_SRC connections (a client address has
		# 64,512 ports with the widest range); saturn answers its whole /24.
		nsrc=$(((total + PER_SRC - 1) / PER_SRC))
		for i in $(seq "$nsrc"); do
			ip -n "$ns" addr add "$subnet.$((10 + i))/24" dev "$dev"
			srcs+="${srcs:+,}$subnet.$((10 + i))"
		done
		ip netns exec "$ns" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
		# The probes: a client of their own, from an address of its own.
		ip -n "$ns" addr add "$subnet.9/24" dev "$dev"
		probe_src=$subnet.9
		echo "# $b: saturn at $addr in namespace $ns (link $dev), clients from $srcs, probes from $probe_src"
	else
		addr="127.0.0.1:$port"
		srcs=$(loopback_srcs "$total")
		probe_src=127.0.0.2
		echo "# $b: saturn at $addr, clients from $srcs, probes from $probe_src"
	fi
	for i in $(seq 100); do
		"${where[@]}" "$tool" probe -addr "$addr" -n 1 -c 1 -path "$PATH_GET" -timeout 2s >/dev/null 2>&1 && return
		sleep 0.1
	done
	echo "$me: $addr does not answer GET $PATH_GET" >&2
	exit 1
}

stop_instance() {
	"$saturn" supervisor stop --state-dir "$state" --instance "$inst" >/dev/null 2>&1 ||
		echo "$me: stopping $inst failed" >&2
}

# peer RUN TOTAL: net/http on loopback serving $site, measured like saturn.
peer() {
	local run=$1 total=$2 nserve i p out sp=() port
	nserve=$(((total + PER_SERVE - 1) / PER_SERVE))
	port=$(free_port $(seq 18100 18199))
	for ((i = 0; i < nserve; i++)); do
		out="$work/$run-serve$i.addr"
		"$tool" serve -listen "127.0.0.1:$port" -root "$site" $([ "$nserve" -gt 1 ] && echo -reuseport) \
			>"$out" 2>"$work/$run-serve$i.log" 9>&- &
		p=$!
		pids+=($p)
		sp+=($p)
		pidname[$p]="net/http#$i"
		for _ in $(seq 100); do [ -s "$out" ] && break; sleep 0.05; done
		[ -s "$out" ] || { echo "$me: net/http did not start:" >&2; cat "$work/$run-serve$i.log" >&2; exit 1; }
	done
	probe_src=127.0.0.2
	echo "# $run: net/http at 127.0.0.1:$port ($nserve process(es), pid ${sp[*]}), clients from $(loopback_srcs "$total"), probes from $probe_src"
	measure "$run" net/http "$total" "127.0.0.1:$port" "$(loopback_srcs "$total")" "${sp[*]}"
	for p in "${sp[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${sp[@]}"; do timeout 30 tail --pid="$p" -f /dev/null || true; done
}

for b in $BACKENDS; do
	total=$CONNS
	[ "$b" = kernel ] && total=$KCONNS
	echo "# --- $b: $total connections"
	start_instance "$b" "$total"
	pids_before=$(status_pids "$inst" | tr '\n' ' ')
	measure "$b" saturn "$total" "$addr" "$srcs" "$inst_pids" "${where[@]}"
	pids_after=$(status_pids "$inst" | tr '\n' ' ')
	if [ "$pids_before" != "$pids_after" ]; then
		failures+=("$b: a component restarted during the run: $pids_before -> $pids_after")
		echo "#   $b: a component restarted: $pids_before -> $pids_after; the web server's log ends:"
		tail -5 "$state/$inst/logs/web.log" | sed 's/^/#     /'
	fi
	stop_instance
	[ -n "$SKIP_PEER" ] || peer "$b" "$total"
done

echo
echo "# per connection: B/conn = (after - before) / held; Pss for saturn is supervisor + netproc + diskproc + web,"
echo "# for net/http its process(es). slab: usertcp = the clients' sockets only; kernel and net/http = both ends."
echo "# latencies in µs, new connection per request; ratio = p99 with idle / baseline p99 (target <= 3)."
echo "# Below about 10,000 connections the per-connection memory is mostly noise: Go returning heap the baseline"
echo "# probe used, the probes' TIME_WAIT sockets expiring, and (Slab is machine-wide) whatever else runs here."
fmt='%-8s %-9s %7s %7s %10s %11s %9s %9s %9s %6s %7s %7s\n'
# shellcheck disable=SC2059
printf "$fmt" run server held open_s pss_B/conn slab_B/conn p50_base p99_base p99_idle ratio errors closed
for r in "${rows[@]}"; do
	# shellcheck disable=SC2059,SC2086
	printf "$fmt" $r
done
if [ ${#failures[@]} -gt 0 ]; then
	echo
	for f in "${failures[@]}"; do echo "FAILED: $f"; done
	exit 1
fi
