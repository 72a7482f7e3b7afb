#!/usr/bin/env bash
# netproc's usertcp backend (saturn's own TCP/IP stack over TUN, in a network
# namespace) against the kernel, in one run:
#
#   1. Bulk TCP, one connection, BYTES per run, 256 KiB reads and writes:
#      a kernel client in the namespace sending to an app on usertcp
#      (kernel-to-saturn), and an app on usertcp sending to a kernel server
#      in the namespace (saturn-to-kernel); the peer is the kernel talking to
#      itself over a veth pair between two namespaces this script makes
#      (veth), with the same tool at both ends (usertcpbench -impl net).
#   2. 1 KiB HTTP responses over 64 keep-alive connections, wrk as the
#      client: the same net/http server (bench/netbench) over appproc on
#      usertcp, wrk run in the namespace; over appproc on the kernel backend,
#      wrk on loopback; and on Go's own net, wrk on loopback.
#   2b. (phase loss) Bulk TCP over a lossy link: for each rate in LOSS, a
#      usertcp instance whose link drops that percentage of packets in each
#      direction (netproc's own impairment, impair_drop: the kernel here has
#      no netem), LOSS_BYTES per run; Linux as the sender (a kernel client
#      in the namespace sending to an app on usertcp, Loss<rate>/linux-sends)
#      against saturn as the sender (an app on usertcp sending to a kernel
#      server, Loss<rate>/saturn-sends), over the same link, interleaved. The
#      retransmission timeouts of each side are printed beside each run:
#      saturn's from `saturn status --metrics`, the kernel's from nstat in
#      the namespace; the sender's per run are summed up at the end
#      (RTO<rate>/linux-sends, RTO<rate>/saturn-sends).
#   3. CONNS concurrent idle connections held by an app on usertcp, opened
#      from the namespace (spread over several source addresses), and the
#      memory they cost: netproc's resident memory (its Go heap, and the
#      pages of the connection table's persistent memfd it has touched)
#      before and after, per connection; and for context the kernel's slab
#      growth for its 100,000 client sockets.
#
# Phases 1 and 2 run in RUNS interleaved rounds (every case once per round,
# so that a noisy neighbour hurts all alike); every measured command runs
# under flock /tmp/saturn-bench.lock, so that benchmarks by different people
# never overlap. Medians and ratios are printed at the end.
#
#   bench/usertcp.sh                      # 3 rounds, 2G per bulk run, 10 s wrk runs, 100,000 connections
#   RUNS=5 BYTES=4G DURATION=20s CONNS=50000 bench/usertcp.sh
#   PHASES=bulk,http bench/usertcp.sh     # skip the connection count
#   PHASES=loss LOSS="1 5" LOSS_BYTES=256M RUNS=3 bench/usertcp.sh
#
# Knobs (environment):
#   RUNS        rounds of phases 1 and 2 (default 3)
#   BYTES       bytes per bulk run (default 2G; K, M, G suffixes)
#   DURATION    length of each wrk run (default 10s)
#   HTTP_CONNS  wrk's connections (default 64); THREADS wrk's threads (default 2)
#   CONNS       connections held in phase 3 (default 100000; at most about
#               130,000: the stack's connection table holds 131,072)
#   PHASES      which phases to run (default bulk,http,conns; loss on request)
#   LOSS        drop percentages of phase loss (default "1 5")
#   LOSS_BYTES  bytes per lossy run (default 256M)
#   IMPAIR_SEED the impairment's seed (default 1)
#   LINUX_CC    Linux's congestion control as the sender in phase loss, set
#               on the route to saturn (default: the namespace's, which is
#               the host's: bbr on some machines, which does not slow down
#               for random loss; cubic compares like for like with saturn)
#   SATURN_CC   saturn's congestion control as the sender in phase loss
#               ([netproc] congestion: cubic, the default, reno or bbr)
#   CHANNEL_BUFFER  the instances' [channel] buffer_size (default: saturn's,
#               64 KiB); the most one recv or send moves between app and
#               netproc
#
# Needs root (TUN devices, namespaces, veth) and installs its tools with
# scripts/deps.sh bench. Everything it makes (instances, namespaces, the veth
# pair, processes) is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
BYTES=${BYTES:-2G}
DURATION=${DURATION:-10s}
HTTP_CONNS=${HTTP_CONNS:-64}
THREADS=${THREADS:-2}
CONNS=${CONNS:-100000}
PHASES=${PHASES:-bulk,http,conns}
LOSS=${LOSS:-1 5}
LOSS_BYTES=${LOSS_BYTES:-256M}
IMPAIR_SEED=${IMPAIR_SEED:-1}
LINUX_CC=${LINUX_CC:-}
SATURN_CC=${SATURN_CC:-cubic}
CHANNEL_BUFFER=${CHANNEL_BUFFER:-}
LOCK=/tmp/saturn-bench.lock

if [ "$(id -u)" -ne 0 ]; then
	echo "usertcp.sh: needs root (it makes TUN devices, network namespaces and a veth pair)" >&2
	exit 1
fi
[ -e /dev/net/tun ] || { echo "usertcp.sh: no /dev/net/tun here" >&2; exit 1; }
./scripts/deps.sh bench
for cmd in ip wrk flock; do
	command -v "$cmd" >/dev/null || { echo "usertcp.sh: $cmd is not installed" >&2; exit 1; }
done
phase() { [[ ",$PHASES," == *",$1,"* ]]; }

# Unique names: two runs of this script (or the tests) never meet.
id=$$
ns_sat="ut$id-s"  # usertcp instance's namespace (made by netproc)
ns_con="ut$id-c"  # the connection-count instance's namespace
ns_loss="ut$id-l" # the lossy instances' namespace
ns_va="ut$id-va"  # veth peer, client side
ns_vb="ut$id-vb"  # veth peer, server side
sat=10.201.0 con=10.203.0 veth=10.202.0 lossnet=10.204.0
work=$(mktemp -d)
export SATURN_STATE_DIR="$work/state"
pids=()
instances=()
cleanup() {
	set +e
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	for i in "${instances[@]}"; do
		SATURN_INSTANCE=$i "$work/saturn" supervisor stop >/dev/null 2>&1
	done
	ip link del "ut$id-a" 2>/dev/null # if it never reached its namespace
	for ns in "$ns_va" "$ns_vb" "$ns_sat" "$ns_con" "$ns_loss"; do
		ip netns del "$ns" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

go build -o "$work/saturn" ./cmd/saturn
go build -o "$work/usertcpbench" ./bench/usertcpbench
go build -o "$work/netbench" ./bench/netbench

# instance NAME CONFIG: start an instance.
instance() {
	local name=$1
	printf '%s' "$2" >"$work/$name.toml"
	if [ -n "$CHANNEL_BUFFER" ]; then
		printf '\n[channel]\nbuffer_size = %s\n' "$CHANNEL_BUFFER" >>"$work/$name.toml"
	fi
	instances+=("$name")
	SATURN_INSTANCE=$name "$work/saturn" supervisor start --detach --config "$work/$name.toml" >/dev/null
}
# netproc_pid NAME
netproc_pid() { SATURN_INSTANCE=$1 "$work/saturn" status | awk '$1 == "netproc" { print $3 }'; }

# server NAME INSTANCE|- [ip netns exec NS] CMD...: start a server that
# prints its address first, and wait for it. INSTANCE is the saturn
# instance an -impl saturn server attaches to.
declare -A addr
server() {
	local name=$1 inst=$2 out="$work/$1.addr"
	shift 2
	SATURN_INSTANCE=$inst "$@" >"$out" 2>"$work/$name.log" &
	pids+=($!)
	for _ in $(seq 200); do [ -s "$out" ] && break; sleep 0.05; done
	[ -s "$out" ] || { echo "$name did not start:" >&2; cat "$work/$name.log" >&2; exit 1; }
	addr[$name]=$(head -1 "$out")
}

results="$work/results"
: >"$results"
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores ($(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)), $(go version | cut -d' ' -f3), $(wrk --version 2>&1 | head -1 | cut -d' ' -f1-2)"
echo "# RUNS=$RUNS BYTES=$BYTES DURATION=$DURATION HTTP_CONNS=$HTTP_CONNS CONNS=$CONNS PHASES=$PHASES CHANNEL_BUFFER=${CHANNEL_BUFFER:-default} LOSS='$LOSS' LOSS_BYTES=$LOSS_BYTES IMPAIR_SEED=$IMPAIR_SEED"
echo "# load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"

if phase bulk || phase http; then
	instance "usertcp-$id" "$(printf '[netproc]\nbackend = "usertcp"\nnetns = "%s"\naddress = "%s.2/24"\n' "$ns_sat" "$sat")"
	instance "kernel-$id" "$(printf '[netproc]\nbackend = "kernel"\n')"
	echo "# usertcp instance: $(SATURN_INSTANCE=usertcp-$id "$work/saturn" status | awk '$1 == "netproc"' | grep -o 'link=[^ ]*') in namespace $ns_sat, saturn $sat.2, kernel $sat.1"
fi

if phase bulk; then
	# The veth peer: two namespaces and a pair between them, MTU 1500 like
	# the TUN device, the kernel's offloads (TSO, GRO) as they come.
	ip netns add "$ns_va"
	ip netns add "$ns_vb"
	ip link add "ut$id-a" type veth peer name "ut$id-b"
	ip link set "ut$id-a" netns "$ns_va"
	ip link set "ut$id-b" netns "$ns_vb"
	ip -n "$ns_va" addr add "$veth.1/24" dev "ut$id-a"
	ip -n "$ns_vb" addr add "$veth.2/24" dev "ut$id-b"
	for ns in "$ns_va" "$ns_vb"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$ns_va" link set "ut$id-a" up
	ip -n "$ns_vb" link set "ut$id-b" up

	server sink-veth - ip netns exec "$ns_vb" "$work/usertcpbench" sink -impl net -listen "$veth.2:5001"
	server sink-saturn "usertcp-$id" "$work/usertcpbench" sink -impl saturn -listen "$sat.2:5001"
	server sink-kernel - ip netns exec "$ns_sat" "$work/usertcpbench" sink -impl net -listen "$sat.1:5002"
	echo "# bulk: $BYTES per run, one connection, 256 KiB per read and write, $RUNS interleaved rounds"
	for _ in $(seq "$RUNS"); do
		flock "$LOCK" ip netns exec "$ns_va" "$work/usertcpbench" send -impl net -addr "$veth.2:5001" -bytes "$BYTES" -name Bulk/veth | tee -a "$results"
		flock "$LOCK" ip netns exec "$ns_sat" "$work/usertcpbench" send -impl net -addr "$sat.2:5001" -bytes "$BYTES" -name Bulk/kernel-to-saturn | tee -a "$results"
		SATURN_INSTANCE=usertcp-$id flock "$LOCK" "$work/usertcpbench" send -impl saturn -addr "$sat.1:5002" -bytes "$BYTES" -name Bulk/saturn-to-kernel | tee -a "$results"
	done
fi

if phase http; then
	server http-usertcp "usertcp-$id" "$work/netbench" http-server -impl saturn -listen "$sat.2:0"
	server http-kernel "kernel-$id" "$work/netbench" http-server -impl saturn -listen 127.0.0.1:0
	server http-net - "$work/netbench" http-server -impl net -listen 127.0.0.1:0
	echo "# http: wrk -t$THREADS -c$HTTP_CONNS -d$DURATION, 1 KiB responses, $RUNS interleaved rounds"
	for _ in $(seq "$RUNS"); do
		for s in usertcp kernel net; do
			where=()
			[ "$s" = usertcp ] && where=(ip netns exec "$ns_sat")
			out=$(flock "$LOCK" "${where[@]}" wrk -t"$THREADS" -c"$HTTP_CONNS" -d"$DURATION" "http://${addr[http-$s]}/")
			if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
				echo "http-$s: errors:" >&2; echo "$out" >&2; exit 1
			fi
			rps=$(awk '/^Requests\/sec/ { print $2 }' <<<"$out")
			printf 'BenchmarkHTTP1K/%s\t1\t%s req/s\n' "$s" "$rps" | tee -a "$results"
		done
	done
fi

if phase loss; then
	# One instance per loss rate, one after the other, each in the same
	# namespace; both senders cross the same impaired link.
	echo "# loss: $LOSS_BYTES per run, one connection, drop rates: $LOSS (% per direction), $RUNS interleaved rounds"
	# timeouts_saturn INSTANCE, timeouts_kernel: RTO counters so far.
	timeouts_saturn() { SATURN_INSTANCE=$1 "$work/saturn" status --metrics | awk '/tcp_timeouts/ && $1 !~ /^#/ { print $2; exit }'; }
	timeouts_kernel() { ip netns exec "$ns_loss" nstat -az TcpExtTCPTimeouts | awk '$1 == "TcpExtTCPTimeouts" { print $2 }'; }
	for rate in $LOSS; do
		inst="loss$rate-$id"
		instance "$inst" "$(printf '[netproc]\nbackend = "usertcp"\nnetns = "%s"\naddress = "%s.2/24"\nimpair_drop = %s\nimpair_seed = %s\ncongestion = "%s"\n' "$ns_loss" "$lossnet" "$rate" "$IMPAIR_SEED" "$SATURN_CC")"
		cc=$(ip netns exec "$ns_loss" sysctl -n net.ipv4.tcp_congestion_control)
		if [ -n "$LINUX_CC" ]; then
			# A namespace may only pick the congestion controls the host
			# allows; a route may name any the kernel has. The route goes
			# through the TUN device, not netproc's hold device
			# (netproc/link/hold_linux.go), which has the address too.
			ldev=$(ip -n "$ns_loss" -o -4 addr show | awk -v a="$lossnet.1/" 'index($4, a) == 1 && $2 != "saturn-hold" { print $2 }')
			ip -n "$ns_loss" route add "$lossnet.2/32" dev "$ldev" src "$lossnet.1" congctl "$LINUX_CC"
			cc=$LINUX_CC
		fi
		echo "# loss $rate%: Linux's congestion control: $cc; saturn's: $SATURN_CC"
		server "lsink-saturn$rate" "$inst" "$work/usertcpbench" sink -impl saturn -listen "$lossnet.2:5001"
		server "lsink-kernel$rate" - ip netns exec "$ns_loss" "$work/usertcpbench" sink -impl net -listen "$lossnet.1:5002"
		for _ in $(seq "$RUNS"); do
			k0=$(timeouts_kernel); s0=$(timeouts_saturn "$inst")
			flock "$LOCK" ip netns exec "$ns_loss" "$work/usertcpbench" send -impl net -addr "$lossnet.2:5001" -bytes "$LOSS_BYTES" -name "Loss$rate/linux-sends" | tee -a "$results"
			k1=$(timeouts_kernel); s1=$(timeouts_saturn "$inst")
			SATURN_INSTANCE=$inst flock "$LOCK" "$work/usertcpbench" send -impl saturn -addr "$lossnet.1:5002" -bytes "$LOSS_BYTES" -name "Loss$rate/saturn-sends" | tee -a "$results"
			k2=$(timeouts_kernel); s2=$(timeouts_saturn "$inst")
			echo "#   RTOs: linux-sends: kernel ${k0:-?} → ${k1:-?}; saturn-sends: saturn ${s1:-?} → ${s2:-?} (saturn's receiver meanwhile: ${s0:-?} → ${s1:-?})"
			if [ -n "$k0" ] && [ -n "$k1" ] && [ -n "$s1" ] && [ -n "$s2" ]; then
				{
					printf 'BenchmarkRTO%s/linux-sends\t1\t%d RTOs\n' "$rate" $((k1 - k0))
					printf 'BenchmarkRTO%s/saturn-sends\t1\t%d RTOs\n' "$rate" $((s2 - s1))
				} | tee -a "$results"
			fi
		done
		SATURN_INSTANCE=$inst "$work/saturn" supervisor stop >/dev/null 2>&1 || true
		ip netns del "$ns_loss" 2>/dev/null || true
	done
fi

if phase conns; then
	# A fresh instance, so that what earlier phases left in netproc's heap
	# and table neither hides nor inflates the growth.
	inst="conns-$id"
	instance "$inst" "$(printf '[netproc]\nbackend = "usertcp"\nnetns = "%s"\naddress = "%s.2/24"\nmax_sockets = %d\n' "$ns_con" "$con" $((CONNS + 1024)))"
	dev=$(ip -n "$ns_con" -o -4 addr show | awk -v a="$con.1/" 'index($4, a) == 1 { print $2 }')
	# A client address has 64,512 ports with the widest range; one source
	# address per 25,000 connections, added to the namespace's side of the
	# TUN device (saturn answers any address of its /24).
	nsrc=$(( (CONNS + 24999) / 25000 ))
	srcs=()
	for i in $(seq "$nsrc"); do
		ip -n "$ns_con" addr add "$con.$((10 + i))/24" dev "$dev"
		srcs+=("$con.$((10 + i))")
	done
	ip netns exec "$ns_con" sysctl -qw net.ipv4.ip_local_port_range="1024 65535"
	SATURN_INSTANCE=$inst "$work/usertcpbench" hold -impl saturn -listen "$con.2:6000" >"$work/hold.addr" 2>"$work/hold.log" &
	hold=$!
	pids+=($hold)
	for _ in $(seq 200); do [ -s "$work/hold.addr" ] && break; sleep 0.05; done
	[ -s "$work/hold.addr" ] || { echo "hold did not start:" >&2; cat "$work/hold.log" >&2; exit 1; }
	np=$(netproc_pid "$inst")
	sleep 2
	# mem PID: resident memory in KiB: all, anonymous (Go's heap and
	# stacks), shared memory (the memfds it has touched: the connection
	# table, the channels).
	mem() { awk '/^(VmRSS|RssAnon|RssShmem):/ { printf "%s ", $2 }' "/proc/$1/status"; }
	slab() { awk '/^Slab:/ { print $2 }' /proc/meminfo; }
	read -r rss0 anon0 shm0 <<<"$(mem "$np")"
	slab0=$(slab)
	# A process may hold 20,000 descriptors here (and root may not raise
	# that in every container): the clients are several processes.
	per=15000
	nproc_open=$(( (CONNS + per - 1) / per ))
	echo "# conns: $CONNS connections from $nproc_open client processes over $nsrc source addresses"
	exec 9>"$LOCK"
	flock 9
	t0=$SECONDS
	start=$(date +%s.%N)
	opens=()
	left=$CONNS
	for i in $(seq 0 $((nproc_open - 1))); do
		n=$(( left < per ? left : per ))
		left=$((left - n))
		ip netns exec "$ns_con" "$work/usertcpbench" open -impl net -addr "$con.2:6000" -conns "$n" -src "${srcs[i % nsrc]}" \
			>"$work/open$i.out" 2>"$work/open$i.log" &
		opens+=($!)
		pids+=($!)
	done
	deadline=$((SECONDS + 120 + CONNS / 500))
	while :; do
		done_=$(cat "$work"/open*.out 2>/dev/null | grep -c '^opened' || true)
		[ "$done_" -eq "$nproc_open" ] && break
		for p in "${opens[@]}"; do
			if ! kill -0 "$p" 2>/dev/null; then
				echo "a client failed:" >&2; cat "$work"/open*.log >&2; exit 1
			fi
		done
		[ $SECONDS -lt $deadline ] || { echo "connections not open after $((SECONDS - t0)) s" >&2; exit 1; }
		sleep 0.2
	done
	took=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	sleep 3 # let the last handshakes and accepts settle
	held=$(tail -1 "$work/hold.log" | awk '{ print $2 }')
	read -r rss1 anon1 shm1 <<<"$(mem "$np")"
	slab1=$(slab)
	for p in "${opens[@]}"; do kill "$p" 2>/dev/null || true; done
	flock -u 9
	[ "$held" = "$CONNS" ] || { echo "the app holds $held connections, not $CONNS" >&2; exit 1; }
	per_conn() { awk -v a="$1" -v b="$2" -v n="$CONNS" 'BEGIN { printf "%.0f", (b - a) * 1024 / n }'; }
	echo "# $CONNS connections established in $took s; netproc (pid $np) RSS $rss0 → $rss1 KiB (anonymous $anon0 → $anon1, shared $shm0 → $shm1); slab $slab0 → $slab1 KiB"
	{
		printf 'BenchmarkConns/netproc-rss\t1\t%s B/conn\n' "$(per_conn "$rss0" "$rss1")"
		printf 'BenchmarkConns/netproc-anon\t1\t%s B/conn\n' "$(per_conn "$anon0" "$anon1")"
		printf 'BenchmarkConns/netproc-memfd\t1\t%s B/conn\n' "$(per_conn "$shm0" "$shm1")"
		printf 'BenchmarkConns/kernel-slab\t1\t%s B/conn\n' "$(per_conn "$slab0" "$slab1")"
		printf 'BenchmarkConns/open-rate\t1\t%.0f conns/s\n' "$(awk -v n="$CONNS" -v t="$took" 'BEGIN { print n / t }')"
	} | tee -a "$results"
	SATURN_INSTANCE=$inst "$work/saturn" supervisor stop >/dev/null 2>&1 || true
fi

echo "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo
if phase bulk; then
	go run ./bench/benchsum -metric MB/s -ratio 'Bulk/kernel-to-saturn//Bulk/veth' -ratio 'Bulk/saturn-to-kernel//Bulk/veth' \
		< <(grep '^BenchmarkBulk' "$results")
	echo
fi
if phase loss; then
	ratios=()
	for rate in $LOSS; do ratios+=(-ratio "Loss$rate/saturn-sends//Loss$rate/linux-sends"); done
	go run ./bench/benchsum -metric MB/s "${ratios[@]}" < <(grep '^BenchmarkLoss' "$results")
	echo
	# The sender's retransmission timeouts per run.
	if grep -q '^BenchmarkRTO' "$results"; then
		go run ./bench/benchsum -metric RTOs < <(grep '^BenchmarkRTO' "$results")
		echo
	fi
fi
if phase http; then
	go run ./bench/benchsum -metric req/s -ratio 'HTTP1K/usertcp//HTTP1K/kernel' -ratio 'HTTP1K/usertcp//HTTP1K/net' \
		< <(grep '^BenchmarkHTTP1K' "$results")
	echo
fi
if phase conns; then
	go run ./bench/benchsum < <(grep '^BenchmarkConns' "$results")
fi
