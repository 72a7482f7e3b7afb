#!/usr/bin/env bash
# Installs the Debian packages saturn's commands use, when they are missing
# and we are root with apt. Without root it says what is missing and goes
# on: the tests that need those tools skip with a message.
#
#   scripts/deps.sh          # what the run and test commands need
#   scripts/deps.sh bench    # plus the peers the benchmarks measure against
set -euo pipefail

# command → package
declare -A want=(
	[ip]=iproute2
	[ping]=iputils-ping
	[curl]=curl
	[tshark]=tshark
)
if [ "${1:-}" = bench ]; then
	want[wrk]=wrk
	want[nginx]=nginx
	want[fio]=fio
fi
missing=()
for cmd in "${!want[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: not root or no apt-get; missing packages: ${missing[*]} (what needs them will skip)" >&2
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	apt-get update >/dev/null 2>&1 || true
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || \
		echo "deps: could not install ${missing[*]} (what needs them will skip)" >&2
fi
