#!/usr/bin/env bash
# Stop the one-node SLURM cluster of tools/slurm_up.sh: cancel its jobs, stop each daemon by its pid file
# (slurmd, slurmctld, slurmdbd, MariaDB, munge) and remove the cluster's state folder
# ($TRANSITIVE_SLURM_STATE, default /var/lib/transitive-slurm) and the configuration it wrote in /etc/slurm.
# The installed packages stay. Safe to run when nothing is up; exit status 1 if a daemon would not stop.
set -uo pipefail

STATE=${TRANSITIVE_SLURM_STATE:-/var/lib/transitive-slurm}
MARK="# written by transitive's tools/slurm_up.sh"

say() { echo "slurm_down: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root"; exit 1; }

# the jobs first: with proctrack/linuxproc their processes would outlive slurmd
if [ -s "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
    jobs=$(squeue -h -o %A 2>/dev/null | sort -u)
    if [ -n "$jobs" ]; then
        say "cancelling jobs $(echo $jobs)"
        scancel $jobs 2>/dev/null
        end=$((SECONDS + 20))
        while [ -n "$(squeue -h -o %A 2>/dev/null)" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
    fi
fi

# every daemon gets SIGTERM at once, then each is waited for (SIGKILL after 20 s)
status=0
pids=()
names=()
for entry in "slurmd:$STATE/slurmd.pid" "slurmctld:$STATE/slurmctld.pid" "slurmdbd:$STATE/slurmdbd.pid" \
             "mariadbd:$STATE/mysql-run/mysqld.pid"; do
    name=${entry%%:*}
    file=${entry#*:}
    [ -s "$file" ] || continue
    pid=$(cat "$file")
    if kill "$pid" 2>/dev/null; then pids+=("$pid"); names+=("$name"); fi
done
# munge: only the one slurm_up.sh started (it leaves a marker in the state folder)
if [ -e "$STATE/munged.ours" ] && [ -s /run/munge/munged.pid ]; then
    pid=$(cat /run/munge/munged.pid)
    if kill "$pid" 2>/dev/null; then pids+=("$pid"); names+=(munged); fi
fi
end=$((SECONDS + 20))
for i in "${!pids[@]}"; do
    while kill -0 "${pids[$i]}" 2>/dev/null && [ $SECONDS -lt $end ]; do sleep 0.2; done
    if kill -0 "${pids[$i]}" 2>/dev/null; then
        say "${names[$i]} (${pids[$i]}) did not stop on SIGTERM: SIGKILL"
        kill -9 "${pids[$i]}" 2>/dev/null
        sleep 0.5
        kill -0 "${pids[$i]}" 2>/dev/null && { say "${names[$i]} (${pids[$i]}) is still running"; status=1; }
    fi
done

if [ $status = 0 ]; then
    for file in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
        grep -qsF "$MARK" "$file" && rm -f "$file"
    done
    rm -rf "$STATE"
    say "SLURM is down"
fi
exit $status
