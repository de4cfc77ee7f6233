#!/usr/bin/env bash
# `make test`: the main suite and, as root, the SLURM cluster suite beside it.
#
# Why beside, not after: the SLURM suite is mostly waiting. The plugin checks job states
# at growing intervals (2 s, then 10 s more each time nothing has finished), so its
# 3.5 minutes hold about 1.5 minutes of CPU, which fits in what the main suite leaves
# idle (it keeps about 1.6 of 2 cores busy). Each suite's output is its own: the SLURM
# suite's is printed, whole, once the main suite is done.
set -uo pipefail
cd "$(dirname "$0")/.."

slurm_pid=""
slurm_log=""
stop_slurm_suite() {
    if [[ -n "$slurm_pid" ]] && kill -0 "$slurm_pid" 2>/dev/null; then
        # The suite runs in its own process group (setsid): pytest, snakemake and the
        # shell whose EXIT trap stops the cluster's daemons all get the signal.
        kill -TERM -- "-$slurm_pid" 2>/dev/null || kill -TERM "$slurm_pid" 2>/dev/null
        wait "$slurm_pid" 2>/dev/null
        # A snakemake still cancelling its jobs once the cluster is down waits forever.
        kill -KILL -- "-$slurm_pid" 2>/dev/null
    fi
}
trap 'stop_slurm_suite; exit 130' INT
trap 'stop_slurm_suite; exit 143' TERM

if [[ "$(id -u)" == 0 ]]; then
    slurm_log="$(mktemp "${TMPDIR:-/tmp}/labelbias-test-slurm.XXXXXX.log")"
    echo "SLURM cluster suite: started beside the main suite (its output follows the main suite's)"
    # A background command of a non-interactive shell is no process-group leader, so
    # setsid makes it one without forking: $! is the group's id.
    setsid make --no-print-directory test-slurm </dev/null >"$slurm_log" 2>&1 &
    slurm_pid=$!
else
    echo "Skipped the SLURM cluster test: it installs and starts daemons, run 'sudo make test-slurm'."
fi

.venv/bin/python -m pytest -q tests --ignore=tests/slurm --durations=12
main_status=$?

slurm_status=0
if [[ -n "$slurm_pid" ]]; then
    if kill -0 "$slurm_pid" 2>/dev/null; then
        echo "Main suite done; waiting for the SLURM cluster suite"
    fi
    wait "$slurm_pid"
    slurm_status=$?
    slurm_pid=""
    echo "===== SLURM cluster suite (make test-slurm), run beside the main suite ====="
    cat "$slurm_log"
    rm -f "$slurm_log"
fi

if ((main_status != 0)); then
    echo "make test: the main suite failed (exit $main_status)" >&2
fi
if ((slurm_status != 0)); then
    echo "make test: the SLURM cluster suite failed (exit $slurm_status)" >&2
fi
((main_status == 0 && slurm_status == 0))
