#!/usr/bin/env bash
# The `file` scenario of ../shared/perf, run the way the harness runs the agent
# (benches/peer-contender.sh, the same workload appended at once), timed twice: to 99.9 %
# of the output lines (the sustained rate) and to the last line (what the harness's
# events/s measures). The two differ by the auditd joiner's timeout (2 s, as auditd's own
# end_of_event_timeout): the workload's last audit records end no event by themselves, so
# the agent holds them until it expires.
#
#   cargo build --release -p vedette-agent
#   N=1000000 RUNS=3 benches/sustained-file.sh
#
# Prints one line per run: both rates, CPU µs per event (all of the agent's threads,
# kernel included) and peak RSS.
set -euo pipefail
N=${N:-1000000}
RUNS=${RUNS:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
perf=$(cd "$here/../shared/perf" && pwd)
work=${WORK:-/tmp/vedette-sustained}
workload=$work/workload-$N.log
mkdir -p "$work"
[[ -s $workload ]] || python3 "$perf/gen_workload.py" --lines "$N" --format file --out "$workload" >/dev/null
for run in $(seq "$RUNS"); do
    d=$work/run
    rm -rf "$d"; mkdir -p "$d"
    : > "$d/tail.log"
    "$here/benches/peer-contender.sh" file 0 "$d/tail.log" "$d/out.ndjson" "$d/work" > "$d/agent.log" 2>&1 &
    pid=$!
    # The harness starts once the agent holds the tail file open.
    for _ in $(seq 200); do
        ls -l "/proc/$pid/fd" 2>/dev/null | grep -q "$d/tail.log" && break
        sleep 0.05
    done
    python3 - "$d" "$N" "$pid" "$workload" "$run" <<'PY'
import os, sys, time
d, n, pid, workload, run = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
tick = os.sysconf("SC_CLK_TCK")
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / tick
def hwm_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
c0 = cpu()
t0 = time.monotonic()
with open(f"{d}/tail.log", "ab", buffering=0) as out, open(workload, "rb") as src:
    while chunk := src.read(1 << 20):
        out.write(chunk)
most, t_most, lines = n * 999 // 1000, None, 0
while not os.path.exists(f"{d}/out.ndjson"):
    time.sleep(0.005)
with open(f"{d}/out.ndjson", "rb", buffering=0) as f:
    while lines < n and time.monotonic() - t0 < 300:
        chunk = f.read(1 << 22)
        if not chunk:
            time.sleep(0.005)
            continue
        lines += chunk.count(b"\n")
        if t_most is None and lines >= most:
            t_most = time.monotonic() - t0
t_all = time.monotonic() - t0
t_most = t_most or t_all
print(f"run {run}: sustained {most / t_most:,.0f} events/s (99.9 % at {t_most:.2f} s), "
      f"to the last line {lines / t_all:,.0f} events/s ({t_all:.2f} s), "
      f"CPU {(cpu() - c0) / max(lines, 1) * 1e6:.2f} us/event, peak RSS {hwm_kib() / 1024:.1f} MiB")
PY
    kill -TERM "$pid"
    wait "$pid" || true
done
rm -rf "$work/run"
