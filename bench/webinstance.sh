# What bench/netprockill.sh and bench/upgrade.sh share: a saturn instance of
# their own serving a 1 KiB file with the web server, on BACKEND (kernel, or
# usertcp in a namespace of its own), reached from the host. Sourced, not run.

# web_setup TAG builds saturn into a fresh folder $work ($saturn), removed
# with the instance stopped when the script exits, writes the site
# ($work/site/files/1k.bin) and picks the web server's $port.
web_setup() {
	work=$(mktemp -d)
	export SATURN_STATE_DIR="$work/state" SATURN_INSTANCE="$1$$"
	go build -o "$work/saturn" ./cmd/saturn
	saturn="$work/saturn"
	trap '"$saturn" supervisor stop >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
	mkdir -p "$work/site/files" && head -c 1024 /dev/urandom >"$work/site/files/1k.bin"
	chmod -R o+rX "$work/site" && chmod o+x "$work"
	port=$(( 20000 + $$ % 20000 ))
}

# web_start SCRIPT TAG EXTRA starts the instance: netproc on BACKEND, with
# EXTRA (more keys of [netproc]) in its section, diskproc on the site and the
# web server on $port. It sets $host and $url (the 1 KiB file). On usertcp
# it sends nothing unless `ip route get` says the host reaches saturn's
# address through the instance's own link.
web_start() {
	local script=$1 tag=$2 extra=$3 netproc listen link
	case $BACKEND in
	kernel)
		netproc='backend = "kernel"'
		host=127.0.0.1 listen="127.0.0.1:$port" ;;
	usertcp)
		host="10.$(( 200 + $$ % 50 )).$(( $$ % 250 )).2"
		netproc="backend = \"usertcp\"
netns = \"sat$tag$(( $$ % 100000 ))\"
address = \"$host/24\""
		listen=":$port" ;;
	*) echo "$script: BACKEND is kernel or usertcp" >&2; exit 1 ;;
	esac
	cat >"$work/$tag.toml" <<TOML
[netproc]
$netproc
$extra
[diskproc]
root = "$work/site"
[[app]]
name = "web"
command = ["saturn", "app", "webserver", "--root", "/", "--listen", "$listen"]
TOML
	"$saturn" supervisor start --detach --config "$work/$tag.toml" >/dev/null
	if [ "$BACKEND" = usertcp ]; then
		link=$("$saturn" status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print([c for c in d["components"] if c["name"]=="netproc"][0]["info"]["host_route"].split(" via ")[1])')
		ip route get "$host" | grep -q "dev $link " || { echo "$script: the host does not route $host into $link; not sending" >&2; exit 1; }
	fi
	url="http://$host:$port/files/1k.bin"
}
