#!/usr/bin/env bash
# Soak run: SIPp places calls through the proxy at a steady rate for a fixed time, with SIPp's
# own UAS standing in for the PBX; the proxy's resident memory is sampled every 30 s.
# Usage: benches/soak.sh [SECONDS] [CALLS_PER_SECOND] [CALL_MS]   (defaults 600 20 5000)
# Needs sipp and a release build (cargo build --release). Loopback only; ports 16060-16080,
# RTP 36000-37999, API 16081.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; rate=${2:-20}; call_ms=${3:-5000}
out=${SOAK_DIR:-$(mktemp -d)}
proxy=./target/release/metaflow-proxy
[ -x "$proxy" ] || { echo "build first: cargo build --release" >&2; exit 1; }
command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester" >&2; exit 1; }

"$proxy" --sip-listen 127.0.0.1:16060 --upstream 127.0.0.1:16070 --media-ip 127.0.0.1 \
  --rtp-ports 36000-37999 --api-listen 127.0.0.1:16081 --data-dir "$out/data" \
  --log-level warn 2> "$out/proxy.log" &
ppid=$!
trap 'kill $ppid 2>/dev/null || true' EXIT
sleep 1
sipp -sn uas -i 127.0.0.1 -p 16070 -nostdin -trace_stat -stf "$out/uas.csv" > /dev/null 2>&1 &
spid=$!
trap 'kill $ppid $spid 2>/dev/null || true' EXIT
calls=$((secs * rate))
sipp -sn uac -i 127.0.0.1 -p 16071 127.0.0.1:16060 -r "$rate" -d "$call_ms" -m "$calls" \
  -nostdin -trace_stat -stf "$out/uac.csv" -fd 30 > "$out/uac.out" 2>&1 &
upid=$!
echo "t_s rss_kib active_calls" > "$out/rss.txt"
t=0
while kill -0 $upid 2>/dev/null; do
  rss=$(awk '/VmRSS/{print $2}' /proc/$ppid/status)
  active=$(curl -s http://127.0.0.1:16081/metrics | awk '/^metaflow_proxy_active_calls /{print $2}')
  echo "$t $rss $active" >> "$out/rss.txt"
  sleep 30; t=$((t + 30))
done
wait $upid && uac_rc=0 || uac_rc=$?
kill $spid 2>/dev/null || true
echo "uac exit code: $uac_rc (0 = every call succeeded)"
echo "last stat line (uac):"; tail -n 1 "$out/uac.csv" | tr ';' '\n' | grep -n . | sed -n '1,3p;10,20p' || true
cat "$out/rss.txt"
curl -s http://127.0.0.1:16081/metrics | grep -E '^metaflow_proxy_(calls_total|active_calls|sip_transactions|limit_rejections_total)'
echo "results in $out"
