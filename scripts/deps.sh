#!/usr/bin/env bash
# Installs the Debian packages saturn's run and test commands use, when they
# are missing and we are root with apt. Without root it says what is missing
# and goes on: the tests that need those tools skip with a message.
set -euo pipefail

# command → package
declare -A want=(
	[ip]=iproute2
	[ping]=iputils-ping
	[curl]=curl
	[tshark]=tshark
	[fio]=fio
)
missing=()
for cmd in "${!want[@]}"; do
	command -v "$cmd" >/dev/null 2>&1 || missing+=("${want[$cmd]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
	echo "deps: not root or no apt-get; missing packages: ${missing[*]} (tests needing them will skip)" >&2
	exit 0
fi
echo "deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null 2>&1; then
	apt-get update >/dev/null 2>&1 || true
	apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null || \
		echo "deps: could not install ${missing[*]} (tests needing them will skip)" >&2
fi
