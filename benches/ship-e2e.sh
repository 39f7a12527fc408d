#!/usr/bin/env bash
# End to end, file to committed SQLite rows, agent and aggregator on this machine, with the
# ceilings measured in the same run:
#   1. rsyslog tailing the same workload to a JSON file (../shared/perf, `one rsyslog file`);
#   2. a bare insert loop of the same rows into SQLite (benches/src/bin/insert-ceiling.rs);
#   3. ours: the workload appended to a file the agent tails; events/s until the last row
#      is committed, agent and aggregator CPU and peak RSS, bytes on the wire per event
#      and the compression ratio (from the agent's summary);
#   4. latency at half the sustained rate: lines written with their write time as their
#      timestamp at a steady pace; each row's commit is seen by polling the database
#      every 5 ms; p50/p99 of (seen - written).
# Usage: benches/ship-e2e.sh   (N=500000 by default; WORK=/tmp/vedette-ship-bench;
#        VEDETTE_AGENT_BIN=path runs another agent build, to compare two in one sitting)
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-500000}
WORK=${WORK:-/tmp/vedette-ship-bench}
LAT_SECONDS=${LAT_SECONDS:-10}
PERF=$(cd ../shared/perf && pwd)
# The first ceiling needs the peers the harness installs (a new VM has none).
if ! command -v rsyslogd > /dev/null; then
    echo "rsyslogd is missing: run ../shared/perf/run-peers.sh install first" >&2
    exit 1
fi
rm -rf "$WORK"; mkdir -p "$WORK"

cargo build --release -q -p vedette-agent -p vedette-aggregator
cargo build --release -q -p vedette-benches --bin insert-ceiling
bin=$PWD/target/release
agent=${VEDETTE_AGENT_BIN:-$bin/vedette-agent}

echo "== workload: $N events (../shared/perf/gen_workload.py --format file)"
python3 "$PERF/gen_workload.py" --lines "$N" --format file --out "$WORK/workload.log"

echo "== ceiling 1: rsyslog, file -> JSON (same workload generator, same N)"
RESULTS=$WORK/rsyslog.jsonl N=$N WORK=$WORK/peers \
    "$PERF/run-peers.sh" one rsyslog file > "$WORK/rsyslog.out" 2>&1 || { cat "$WORK/rsyslog.out"; exit 1; }
python3 - "$WORK/rsyslog.jsonl" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1]) if l.strip()][-1]
print(f"   rsyslog: {r['events_per_s']} events/s, {r['cpu_us_per_event']} us CPU/event, peak RSS {r['peak_rss_MiB']} MiB, ok={r.get('ok')}")
PY

echo "== ceiling 2: bare SQLite insert of the same rows (batches of 1000)"
"$bin/vedette-agent" normalize --tz UTC --now 2026-11-27T00:00:00Z "$WORK/workload.log" > "$WORK/events.ndjson" 2>/dev/null
"$bin/insert-ceiling" "$WORK/events.ndjson" "$WORK/ceiling.db" 1000 | tee "$WORK/ceiling.json" | sed 's/^/   /'

start_pair() {  # $1: run name; sets AGG_PID AGENT_PID RUN
    RUN=$WORK/$1; mkdir -p "$RUN"
    "$bin/vedette-aggregator" init --state-dir "$RUN/agg" > /dev/null
    printf '[aggregator]\nstate_dir = "%s"\nlisten = "127.0.0.1:0"\n' "$RUN/agg" > "$RUN/agg.toml"
    "$bin/vedette-aggregator" serve --config "$RUN/agg.toml" > "$RUN/agg.out" 2> "$RUN/agg.err" &
    AGG_PID=$!
    for _ in $(seq 300); do grep -q 'listening on' "$RUN/agg.out" 2>/dev/null && break; sleep 0.05; done
    local port; port=$(sed -n 's/.*listening on .*:\([0-9]*\)$/\1/p' "$RUN/agg.out")
    local token; token=$("$bin/vedette-aggregator" enroll-token create --state-dir "$RUN/agg")
    "$agent" enroll --server "127.0.0.1:$port" --token "$token" --state-dir "$RUN/agent" > /dev/null
    : > "$RUN/in.log"
    cat > "$RUN/agent.toml" <<TOML
[agent]
state_dir = "$RUN/agent"
timezone = "UTC"
[dedup]
enabled = false
[[input.file]]
paths = ["$RUN/in.log"]
read_from = "start"
[output]
type = "aggregator"
TOML
    "$agent" run --config "$RUN/agent.toml" 2> "$RUN/agent.err" &
    AGENT_PID=$!
    for _ in $(seq 300); do grep -q 'reading' "$RUN/agent.err" 2>/dev/null && break; sleep 0.05; done
}

stop_pair() {
    kill -TERM "$AGENT_PID"; wait "$AGENT_PID" || true
    kill -TERM "$AGG_PID"; wait "$AGG_PID" || true
}

echo "== ours: file -> agent -> QUIC -> aggregator -> SQLite"
start_pair throughput
# Both measuring scripts open the aggregator's database the same way.
cat > "$WORK/vedette_db.py" <<'PY'
import sqlite3, time
def open_db(path):
    # The aggregator may still be creating the database (its WAL files) when this starts.
    for _ in range(200):
        try:
            db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            db.execute("select count(*) from batches").fetchone()
            return db
        except sqlite3.OperationalError:
            time.sleep(0.025)
    raise SystemExit(f"{path}: the aggregator's database did not open in 5 s")
PY
PYTHONPATH="$WORK" python3 - "$RUN" "$N" "$AGENT_PID" "$AGG_PID" "$WORK/workload.log" <<'PY' | tee "$WORK/ours.json"
import json, os, sqlite3, sys, time
run, n, agent, agg, workload = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
tick = os.sysconf("SC_CLK_TCK")
def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def hwm(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmHWM:"):
            return int(l.split()[1])
from vedette_db import open_db
db = open_db(f"{run}/agg/events.db")
c0a, c0g = cpu(agent), cpu(agg)
t0 = time.monotonic()
with open(f"{run}/in.log", "ab") as out, open(workload, "rb") as src:
    while chunk := src.read(1 << 20):
        out.write(chunk)
count = 0
# The last rows can wait on a timer, not on throughput: the workload's last auditd record
# is held until the joiner's timeout (2 s), since no later record tells it the event is
# complete. So the sustained rate is taken to 99.9 % of the rows, beside the rate to the
# last row.
most = n * 999 // 1000
t_most = None
while count < n and time.monotonic() - t0 < 600:
    time.sleep(0.02)
    count = db.execute("select coalesce(sum(stored), 0) from batches").fetchone()[0]
    if t_most is None and count >= most:
        t_most = time.monotonic() - t0
secs = time.monotonic() - t0
t_most = t_most or secs
print(json.dumps({"events": count, "seconds": round(secs, 3), "events_per_s": round(count / secs),
    "sustained_events_per_s": round(most / t_most), "seconds_to_99_9_pct": round(t_most, 3),
    "agent_cpu_us_per_event": round((cpu(agent) - c0a) / max(count, 1) * 1e6, 2),
    "aggregator_cpu_us_per_event": round((cpu(agg) - c0g) / max(count, 1) * 1e6, 2),
    "agent_peak_rss_mib": round(hwm(agent) / 1024, 1), "aggregator_peak_rss_mib": round(hwm(agg) / 1024, 1)}))
PY
stop_pair
grep -E 'wire:|shipped:' "$RUN/agent.err" | sed 's/^/   /'

rate=$(python3 -c "import json; print(json.load(open('$WORK/ours.json'))['sustained_events_per_s'] // 2)")
echo "== latency at half that rate ($rate events/s for ${LAT_SECONDS}s)"
start_pair latency
PYTHONPATH="$WORK" python3 - "$RUN" "$rate" "$LAT_SECONDS" "$WORK/workload.log" <<'PY' | tee "$WORK/latency.json"
import json, re, sqlite3, sys, threading, time
run, rate, seconds, workload = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
stamp_re = re.compile(rb"^[A-Z][a-z]{2} +[0-9]+ [0-9:]{8} ")
# The workload's messages, each given the time it is written (ISO 8601 with ms, which the
# agent reads as the event time) in place of its syslog timestamp.
msgs = [stamp_re.sub(b"", l) for l in open(workload, "rb").read().splitlines()[: int(rate * seconds) + 1]]
total = len(msgs)
from vedette_db import open_db
db = open_db(f"{run}/agg/events.db")
lat, last, seen, own = [], 0, 0, 0
done = threading.Event()
def writer():
    step = 0.01
    per = max(1, int(rate * step))
    t0 = time.time(); i = 0
    with open(f"{run}/in.log", "ab", buffering=0) as out:
        while i < total:
            now = time.time()
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"
            buf = b"".join(stamp.encode() + b" " + m + b"\n" for m in msgs[i:i + per])
            out.write(buf); i += per
            time.sleep(max(0.0, t0 + (i / per) * step - time.time()))
    done.set()
start_ms = time.time() * 1000
threading.Thread(target=writer, daemon=True).start()
deadline = time.time() + seconds + 60
while seen < total and time.time() < deadline:
    time.sleep(0.005)
    rows = db.execute("select id, time_ms from events where id > ? order by id", (last,)).fetchall()
    now_ms = time.time() * 1000
    for rid, t in rows:
        # Lines whose message carries its own time (the JSON application events) keep
        # it as the event time: those say nothing about latency.
        if t >= start_ms - 1000:
            lat.append(now_ms - t)
        else:
            own += 1
        last = rid
    seen += len(rows)
lat.sort()
q = lambda p: round(lat[min(len(lat) - 1, int(p * len(lat)))]) if lat else None
print(json.dumps({"rate": rate, "events": seen, "written": total, "timed": len(lat), "own_time": own, "p50_ms": q(0.50), "p99_ms": q(0.99), "max_ms": q(1.0)}))
PY
stop_pair
echo "== done; files in $WORK"
