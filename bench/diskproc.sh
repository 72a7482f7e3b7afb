#!/usr/bin/env bash
# diskproc against its peers, in one run on one machine: 4 KiB random reads
# over a 1 GiB file, page-cached and O_DIRECT, at queue depths 1, 32 and
# 128, and 1 MiB sequential reads; through diskproc (an app attached to a
# running instance, appproc's File.ReadAt from DEPTH goroutines), fio with
# its io_uring engine at the same depth, and os.File.ReadAt from DEPTH
# goroutines. COUNT runs of each (default 3), DUR each (default 3s);
# medians and ratios at the end (bench/benchsum).
#
#   bench/diskproc.sh                       # about 5 minutes
#   BACKEND=threads bench/diskproc.sh       # diskproc's worker pool instead of io_uring
#   DIR=/some/disk bench/diskproc.sh        # where the 1 GiB file goes (not a tmpfs: O_DIRECT)
#   CASES='rand4k/cached/qd32' COUNT=7 bench/diskproc.sh   # only the cases this regular expression matches
#   NICE=-5 bench/diskproc.sh               # every reader and the instance at this niceness (root)
#   BASE_REV=HEAD~3 bench/diskproc.sh       # an A/B: diskproc and diskbench of that revision too, interleaved
#
# Besides IOPS, each line has the processor time one read cost: fio's
# (cpu-ns/op, from its own accounting), os.File's, and through diskproc the
# app's (cpu-ns/op) and diskproc's (server-ns/op) apart. On a shared
# machine throughput moves with the neighbours' load; what a read costs
# moves much less. Every measured command runs under flock LOCK (default
# /tmp/saturn-bench.lock), so that benchmarks by different people never
# overlap.
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
DUR=${DUR:-3}
BACKEND=${BACKEND:-auto}
CASES=${CASES:-.}
NICE=${NICE:-0}
LOCK=${LOCK:-/tmp/saturn-bench.lock}
command -v flock >/dev/null || { echo "diskproc.sh: flock is missing" >&2; exit 1; }
command -v fio >/dev/null || { echo "diskproc.sh: fio is missing ('scripts/deps.sh bench' installs it, as root)" >&2; exit 1; }
base=$(mktemp -d "${DIR:-/var/tmp}/saturn-diskbench.XXXXXX")
export SATURN_STATE_DIR=$base/state SATURN_INSTANCE=bench
cleanup() {
	"$base/saturn" supervisor stop >/dev/null 2>&1 || true
	[ -x "$base/saturn-base" ] && SATURN_INSTANCE=bench-base "$base/saturn-base" supervisor stop >/dev/null 2>&1
	rm -rf "$base"
}
trap cleanup EXIT
mkdir -p "$base/root"
go build -o "$base/saturn" ./cmd/saturn
go build -o "$base/diskbench" ./bench/diskbench
if [ -n "${BASE_REV:-}" ]; then
	git worktree add --detach "$base/src-base" "$BASE_REV" >/dev/null 2>&1
	(cd "$base/src-base" && go build -o "$base/saturn-base" ./cmd/saturn && go build -o "$base/diskbench-base" ./bench/diskbench)
	git worktree remove --force "$base/src-base"
fi
file=$base/root/data.bin
dd if=/dev/urandom of="$file" bs=1M count=1024 conv=fsync status=none
cat >"$base/saturn.toml" <<TOML
[netproc]
backend = "kernel" # not used here; usertcp's namespace may be another instance's

[diskproc]
root = "$base/root"
backend = "$BACKEND"
TOML
nice -n "$NICE" "$base/saturn" supervisor start --detach --config "$base/saturn.toml" >/dev/null
diskproc=$(pgrep -f "diskproc --config $SATURN_STATE_DIR/bench/") # for its processor time
if [ -n "${BASE_REV:-}" ]; then
	SATURN_INSTANCE=bench-base nice -n "$NICE" "$base/saturn-base" supervisor start --detach --config "$base/saturn.toml" >/dev/null
	diskproc_base=$(pgrep -f "diskproc --config $SATURN_STATE_DIR/bench-base/")
	base_pid=()
	"$base/diskbench-base" -h 2>&1 | grep -q server-pid && base_pid=(-server-pid "$diskproc_base")
fi
out=$base/results.txt
{
	echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(fio --version)"
	echo "# diskproc backend: $("$base/saturn" status --json | grep -o '"backend": *"[^"]*"' | tail -1 | cut -d'"' -f4)"
	[ -n "${BASE_REV:-}" ] && echo "# A/B: diskproc-base is diskproc and diskbench of $BASE_REV ($(git rev-parse --short "$BASE_REV")), diskproc those of the work tree"
	echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared); niceness $NICE"
	echo "# the file: 1 GiB on $(df --output=source,fstype "$file" | tail -1 | tr -s ' ')"
} | tee "$out"

# warm reads the file into the page cache before each reader of a cached
# case (direct 0), not once per run: this machine takes page cache back
# with memory to spare (32 MiB of the file in 45 s, 21 GB free; half of it
# within half an hour), and in one run two rounds of the cached cases read
# at the device's speed (fio 12,222 IOPS, os.File 30,167).
warm() { # direct
	[ "$1" = 1 ] || cat "$file" >/dev/null
}

run() { # name bs depth direct seq
	local name=$1 bs=$2 depth=$3 direct=$4 seq=$5 rw=randread
	[ "$seq" = 1 ] && rw=read
	local dflag=() sflag=()
	[ "$direct" = 1 ] && dflag=(-direct)
	[ "$seq" = 1 ] && sflag=(-seq)
	[[ $name =~ $CASES ]] || return 0
	warm "$direct"
	flock "$LOCK" nice -n "$NICE" fio --name=r --filename="$file" --rw=$rw --bs="$bs" --ioengine=io_uring --iodepth="$depth" --direct="$direct" \
		--time_based --runtime="$DUR" --invalidate=0 --norandommap --randrepeat=0 --output-format=json |
		"$base/diskbench" -mode fio -name "Disk/$name/fio" | tee -a "$out"
	local ab=(new)
	# With an A/B, the two go in turn first, round by round: on a shared
	# machine the place in the round matters.
	[ -n "${BASE_REV:-}" ] && ab=(new base) && ((round % 2)) && ab=(base new)
	for which in "${ab[@]}"; do
		warm "$direct"
		if [ "$which" = new ]; then
			flock "$LOCK" nice -n "$NICE" "$base/diskbench" -mode diskproc -server-pid "$diskproc" -name "Disk/$name/diskproc" -file data.bin -bs "$bs" -depth "$depth" "${dflag[@]}" "${sflag[@]}" -duration "${DUR}s" | tee -a "$out"
		else
			SATURN_INSTANCE=bench-base flock "$LOCK" nice -n "$NICE" "$base/diskbench-base" "${base_pid[@]}" -mode diskproc -name "Disk/$name/diskproc-base" -file data.bin -bs "$bs" -depth "$depth" "${dflag[@]}" "${sflag[@]}" -duration "${DUR}s" | tee -a "$out"
		fi
	done
	warm "$direct"
	flock "$LOCK" nice -n "$NICE" "$base/diskbench" -mode osfile -name "Disk/$name/osfile" -file "$file" -bs "$bs" -depth "$depth" "${dflag[@]}" "${sflag[@]}" -duration "${DUR}s" | tee -a "$out"
}
for round in $(seq "$COUNT"); do
	for cache in cached direct; do
		d=0; [ $cache = direct ] && d=1
		for depth in 1 32 128; do
			run "rand4k/$cache/qd$depth" 4096 "$depth" "$d" 0
		done
		run "seq1m/$cache/qd1" 1048576 1 "$d" 1
	done
	echo "# load average after round $round: $(cut -d' ' -f1-3 /proc/loadavg)" | tee -a "$out"
done
echo
ratios=()
for cache in cached direct; do
	for t in rand4k/$cache/qd1 rand4k/$cache/qd32 rand4k/$cache/qd128 seq1m/$cache/qd1; do
		[[ $t =~ $CASES ]] || continue
		# ns/op of the peer over diskproc's: diskproc's throughput as a multiple of the peer's
		ratios+=(-ratio "Disk/$t/fio//Disk/$t/diskproc" -ratio "Disk/$t/osfile//Disk/$t/diskproc")
		[ -n "${BASE_REV:-}" ] && ratios+=(-ratio "Disk/$t/fio//Disk/$t/diskproc-base" -ratio "Disk/$t/diskproc-base//Disk/$t/diskproc")
	done
done
go run ./bench/benchsum "${ratios[@]}" <"$out"
