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
set -euo pipefail
cd "$(dirname "$0")/.."
COUNT=${COUNT:-3}
DUR=${DUR:-3}
BACKEND=${BACKEND:-auto}
command -v fio >/dev/null || { echo "diskproc.sh: fio is missing ('scripts/deps.sh bench' installs it, as root)" >&2; exit 1; }
base=$(mktemp -d "${DIR:-/var/tmp}/saturn-diskbench.XXXXXX")
export SATURN_STATE_DIR=$base/state SATURN_INSTANCE=bench
cleanup() { "$base/saturn" supervisor stop >/dev/null 2>&1 || true; rm -rf "$base"; }
trap cleanup EXIT
mkdir -p "$base/root"
go build -o "$base/saturn" ./cmd/saturn
go build -o "$base/diskbench" ./bench/diskbench
file=$base/root/data.bin
dd if=/dev/urandom of="$file" bs=1M count=1024 conv=fsync status=none
cat >"$base/saturn.toml" <<TOML
[diskproc]
root = "$base/root"
backend = "$BACKEND"
TOML
"$base/saturn" supervisor start --detach --config "$base/saturn.toml" >/dev/null
out=$base/results.txt
{
	echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), $(fio --version)"
	echo "# diskproc backend: $("$base/saturn" status --json | grep -o '"backend": *"[^"]*"' | tail -1 | cut -d'"' -f4)"
	echo "# load average before the run: $(cut -d' ' -f1-3 /proc/loadavg) (the machine is shared)"
	echo "# the file: 1 GiB on $(df --output=source,fstype "$file" | tail -1 | tr -s ' ')"
} | tee "$out"
cat "$file" >/dev/null # into the page cache

run() { # name bs depth direct seq
	local name=$1 bs=$2 depth=$3 direct=$4 seq=$5 rw=randread
	[ "$seq" = 1 ] && rw=read
	local dflag=() sflag=()
	[ "$direct" = 1 ] && dflag=(-direct)
	[ "$seq" = 1 ] && sflag=(-seq)
	fio --name=r --filename="$file" --rw=$rw --bs="$bs" --ioengine=io_uring --iodepth="$depth" --direct="$direct" \
		--time_based --runtime="$DUR" --invalidate=0 --norandommap --randrepeat=0 --output-format=json |
		"$base/diskbench" -mode fio -name "Disk/$name/fio" | tee -a "$out"
	"$base/diskbench" -mode diskproc -name "Disk/$name/diskproc" -file data.bin -bs "$bs" -depth "$depth" "${dflag[@]}" "${sflag[@]}" -duration "${DUR}s" | tee -a "$out"
	"$base/diskbench" -mode osfile -name "Disk/$name/osfile" -file "$file" -bs "$bs" -depth "$depth" "${dflag[@]}" "${sflag[@]}" -duration "${DUR}s" | tee -a "$out"
}
for i in $(seq "$COUNT"); do
	for cache in cached direct; do
		d=0; [ $cache = direct ] && d=1
		for depth in 1 32 128; do
			run "rand4k/$cache/qd$depth" 4096 "$depth" "$d" 0
		done
		run "seq1m/$cache/qd1" 1048576 1 "$d" 1
	done
done
echo
ratios=()
for cache in cached direct; do
	for t in rand4k/$cache/qd1 rand4k/$cache/qd32 rand4k/$cache/qd128 seq1m/$cache/qd1; do
		# ns/op of the peer over diskproc's: diskproc's throughput as a multiple of the peer's
		ratios+=(-ratio "Disk/$t/fio//Disk/$t/diskproc" -ratio "Disk/$t/osfile//Disk/$t/diskproc")
	done
done
go run ./bench/benchsum "${ratios[@]}" <"$out"
