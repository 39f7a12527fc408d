#!/usr/bin/env bash
# Runs vedette-agent as the third contender of ../shared/perf/run-peers.sh, under the
# contract in ../shared/perf/README.md ("Adding our agent"):
#
#   cargo build --release -p vedette-agent
#   AGENT_CMD="$PWD/benches/peer-contender.sh {scenario} {port} {tail} {output} {workdir}" \
#     ../shared/perf/run-peers.sh run
#
# Usage: peer-contender.sh SCENARIO PORT TAIL_FILE OUTPUT WORKDIR
#   SCENARIO  tcp3164 | tcp5424 (a TCP listener on 127.0.0.1:PORT, framing detected per
#             frame) | file (tail TAIL_FILE from its start)
#   OUTPUT    the NDJSON file the agent writes: one full OCSF event per line
#   WORKDIR   an empty per-run folder: the config and the agent's state go there
# The agent runs in the foreground (exec, so the harness measures its PID) and exits on
# SIGTERM after writing everything it took. Full normalization is on: every event is
# parsed and mapped to OCSF, not only its syslog header. Edge folding (dedup) is always off
# here: the harness counts one output line per input event.
#
# EDGE=off (default): collection and normalization only, like the peers.
# EDGE=on: also the rest of the edge stage: redaction, user/device/process enrichment, the
#   first-seen baseline, asset tags (what it costs, beside EDGE=off in the same sitting).
# AUDIT_TIMEOUT_MS=N: `[agent] audit_timeout_ms` (default 2000, auditd's own). The
#   workload's last audit records of each host have no end record, so the harness's
#   last line waits this long after the input ends; a smaller value shows how much of a
#   run's wall time that wait is. Report it as a separate row, never as the agent's rate.
set -euo pipefail
if [[ $# -ne 5 ]]; then
    echo "usage: $0 SCENARIO PORT TAIL_FILE OUTPUT WORKDIR" >&2
    exit 2
fi
scenario=$1 port=$2 tail=$3 output=$4 workdir=$5
here=$(cd "$(dirname "$0")/.." && pwd)
bin=${VEDETTE_AGENT_BIN:-$here/target/release/vedette-agent}
if [[ ! -x $bin ]]; then
    echo "$bin is missing: cargo build --release -p vedette-agent" >&2
    exit 1
fi
case $scenario in
    tcp3164 | tcp5424)
        input=$(printf '[[input.syslog]]\nprotocol = "tcp"\nlisten = "127.0.0.1:%s"\nallow = ["127.0.0.1"]\n' "$port")
        ;;
    file)
        input=$(printf '[[input.file]]\npaths = ["%s"]\nread_from = "start"\n' "$tail")
        ;;
    *)
        echo "unknown scenario $scenario" >&2
        exit 2
        ;;
esac
case ${EDGE:-off} in
    off)
        edge_cfg=$(printf '[redaction]\nenabled = false\n[enrich]\naccounts = false\nhost = false\nprocesses = false\nbaseline_days = 0\n')
        ;;
    on)
        edge_cfg=$(printf '[asset]\nowner = "perf"\ncriticality = "tier2"\nenvironment = "bench"\n')
        ;;
    *)
        echo "EDGE must be on or off" >&2
        exit 2
        ;;
esac
audit_timeout=${AUDIT_TIMEOUT_MS:-2000}
if ! [[ $audit_timeout =~ ^[0-9]+$ ]]; then
    echo "AUDIT_TIMEOUT_MS must be a number of milliseconds" >&2
    exit 2
fi
mkdir -p "$workdir/state"
cat >"$workdir/agent.toml" <<TOML
[agent]
hostname = "perf-agent"
timezone = "UTC"
state_dir = "$workdir/state"
poll_interval_ms = 10
audit_timeout_ms = $audit_timeout

# The harness counts one output line per input event: edge folding off.
[dedup]
enabled = false
$edge_cfg
$input

[output]
type = "file"
path = "$output"
TOML
exec "$bin" run --config "$workdir/agent.toml"
