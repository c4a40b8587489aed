#!/usr/bin/env bash
# Reproduces docs/PERFORMANCE.md's pipeline figures on this machine: the bare UDP sink
# (the baseline) and the sink that answers every datagram, the sustained rate the whole
# pipeline takes with zero loss inside the server, a burst of 100,000 hosts, a million
# hosts (their memory, then at full rate and past it), and the idle footprint of the six
# processes. Needs a release build:
#   cargo build --release --workspace --bins && contrib/perf/run.sh
# Prints what it measures; each hbload run also prints one JSON line.
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=target/release
dir=$(mktemp -d /tmp/hb-perf.XXXXXX)
# The children run as nobody and must reach the state below it.
chmod 755 "$dir"
udp=${HB_PERF_UDP:-41003}
http=$((udp + 1))
# A server just stopped may hold the port a moment longer (its children exit after it).
free_port() {
    for _ in $(seq 100); do
        ss -Hlun "sport = :$udp" | grep -q . || return 0
        sleep 0.1
    done
    echo "port $udp is still in use" >&2
    return 1
}
start() {
    free_port
    rm -rf "$dir/state"
    cat > "$dir/hb.yaml" <<YAML
hb_port: $udp
hbd_port: $http
state_dir: $dir/state
control_socket: $dir/hb.sock
pidfile: $dir/hb.pid
user: nobody
source_rate: 1000000
source_burst: 1000000
max_hosts: 2000000
YAML
    "$bin/hbsupervisor" -f -c "$dir/hb.yaml" > "$dir/log" 2>&1 &
    server=$!
    sleep 3
}
stop() { [ -n "${server:-}" ] || return 0; kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; server=; }
trap 'stop; rm -rf "$dir"' EXIT

echo "== baseline: a bare UDP sink (recvmmsg, nothing parsed) fed by hbload as fast as it sends"
free_port
"$bin/hbload" --sink -p "$udp" -d 5 &
sink=$!
sleep 0.5
"$bin/hbload" -s "127.0.0.1:$udp" -n 10000 -r 100000000 -d 3 --wait 0 > /dev/null 2>&1 || true
wait "$sink"

echo "== baseline with answers: the sink sends every datagram back (sendmmsg), as an ACK would go"
free_port
"$bin/hbload" --sink --echo -p "$udp" -d 5 &
sink=$!
sleep 0.5
"$bin/hbload" -s "127.0.0.1:$udp" -n 10000 -r 100000000 -d 3 --wait 1 > /dev/null || true
wait "$sink"

echo "== sustained: 10,000 hosts, 6 s at each rate (after 3 s at 10,000/s to learn the hosts)"
for rate in 100000 130000 150000 170000 200000; do
    start
    "$bin/hbload" -s "127.0.0.1:$udp" -n 10000 -r 10000 -d 3 --wait 1 > /dev/null 2>&1
    echo "rate $rate:"
    "$bin/hbload" -s "127.0.0.1:$udp" -n 10000 -r "$rate" -d 6 --wait 3 --ctl "$dir/hb.sock"
    stop
done

echo "== burst: 100,000 hosts at once (after 5 s at 20,000/s to learn them)"
start
"$bin/hbload" -s "127.0.0.1:$udp" -n 100000 -r 20000 -d 5 --wait 2 > /dev/null 2>&1
sleep 2
"$bin/hbload" -s "127.0.0.1:$udp" -n 100000 --burst --wait 8 --ctl "$dir/hb.sock"
stop

echo "== a million hosts: each once in 33 s (30,000/s for 45 s), then the engine's memory"
start
engine=$(pgrep -P "$server" -x hb-engine)
empty=$(awk '/^RssAnon/ { print $2 }' "/proc/$engine/status")
"$bin/hbload" -s "127.0.0.1:$udp" -n 1000000 -r 30000 -d 45 --wait 2 --prefix m --ctl "$dir/hb.sock"
full=$(awk '/^RssAnon/ { print $2 }' "/proc/$engine/status")
echo "engine heap: ${empty} KiB empty, ${full} KiB with a million hosts: $(( (full - empty) * 1024 / 1000000 )) bytes per host"
# At once, so no host's down deadline passes between phases: what goes down is the server's
# doing (each phase starts again at host 0 with a shorter interval, so a phase change makes
# some hosts overdue).
echo "== a million hosts at full rate: 20 s at each rate, no pause between"
for rate in 60000 80000 100000; do
    echo "rate $rate:"
    "$bin/hbload" -s "127.0.0.1:$udp" -n 1000000 -r "$rate" -d 20 --wait 0.5 --prefix m --ctl "$dir/hb.sock"
done
"$bin/hbctl" -s "$dir/hb.sock" counters engine | grep -E "behind_ms|server_dropped|went_" || true
stop

echo "== idle footprint: six processes, 100 hosts heartbeating"
start
"$bin/hbload" -s "127.0.0.1:$udp" -n 100 -r 100 -d 5 --wait 1 > /dev/null 2>&1
sleep 5
total=0
for pid in "$server" $(pgrep -P "$server"); do
    rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$pid/status")
    echo "$(cat "/proc/$pid/comm") ${rss} KiB"
    total=$((total + rss))
done
echo "total ${total} KiB"
