#!/usr/bin/env bash
# The chaos run by hand: load and checking clients on the web server (keep-
# alive and a new connection per request) while netproc, diskproc and the
# web app are killed in turn at random moments, and the web app restarted
# gracefully (`saturn restart web`). Prints each event, then per kind of
# event the count, the median and worst time from it to the first request
# served again, and the requests failed per event (the checking clients'
# and the load generator's, up to the next event). Fails if any promise of
# docs/restart.md is broken (a graceful restart must fail no request).
#
# With BACKEND=usertcp the instance runs saturn's own TCP stack over a TUN
# device in a namespace of its own, and every client runs inside that
# namespace (this needs root and /dev/net/tun).
#
#   bench/chaos.sh                  # 60 kills, up to 1.5 s apart
#   KILLS=300 GAP=3s bench/chaos.sh
#   SEED=1234 bench/chaos.sh        # replay a run
#   BACKEND=usertcp bench/chaos.sh
#   BACKEND=usertcp-resume bench/chaos.sh   # usertcp with [netproc] resume = true
set -euo pipefail
cd "$(dirname "$0")/.."
case "${BACKEND:-kernel}" in
kernel) test=TestChaos ;;
usertcp) test=TestChaosUserTCP ;;
usertcp-resume) test=TestChaosUserTCPResume ;;
*)
	echo "chaos.sh: BACKEND is kernel, usertcp or usertcp-resume, not ${BACKEND}" >&2
	exit 2
	;;
esac
./scripts/deps.sh
echo "# $(date -u +%FT%TZ) $(uname -srm), $(nproc) cores, $(go version | cut -d' ' -f3), backend ${BACKEND:-kernel}; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
exec go test -count=1 -timeout 2h -run "^${test}\$" -v ./internal/chaos \
	-chaos.kills="${KILLS:-60}" -chaos.gap="${GAP:-1500ms}" -chaos.seed="${SEED:-0}" 2>&1 |
	grep -v '^        time=' | grep -v '^=== '
