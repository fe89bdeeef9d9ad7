#!/usr/bin/env bash
# A one-node SLURM cluster on this Debian machine, for the sweep's tests (tests/test_slurm.py) and for trying
# `transitive sweep --executor slurm` without a cluster. Run as root:
#
#     tools/slurm_up.sh      # install what is missing, start munge, MariaDB, slurmdbd, slurmctld, slurmd
#     tools/slurm_down.sh    # stop them again (by their pid files) and remove the cluster's state
#
# What it sets up: Debian's slurm-wlm 22.05 daemons (slurmctld, slurmd, slurmdbd) with munge for
# authentication and MariaDB for accounting (so that `sacct` answers), all running as root; the node is this
# machine with its cores and memory. Two partitions: `debug` (the default) and `high`, whose jobs preempt
# those of `debug` (PreemptType=preempt/partition_prio, PreemptMode=REQUEUE); preempted jobs get their
# --signal at once (SlurmctldParameters=preempt_send_user_signal: submitit's SIGUSR2, so they checkpoint) and
# are requeued. Scheduler intervals are short and AuthInfo=cred_expire=10, so a requeued job starts again
# after about 12 s instead of the default 120 s. ProctrackType=proctrack/linuxproc and TaskPlugin=task/none:
# no cgroups needed. Jobs left from an earlier start are cleared (slurmctld -c).
#
# Idempotent: a daemon whose pid file names a live process is left running; the script ends once the node
# is idle, or fails (exit status 1, one line saying why) within about a minute of the install (if any).
# The state (spool, logs, pid files, the MariaDB data) is kept in $TRANSITIVE_SLURM_STATE
# (default /var/lib/transitive-slurm); the configuration goes to /etc/slurm/, as every SLURM command reads it
# from there. A slurm.conf this script did not write is left alone (the script refuses to go on).
set -euo pipefail

STATE=${TRANSITIVE_SLURM_STATE:-/var/lib/transitive-slurm}
MARK="# written by transitive's tools/slurm_up.sh"
DB_PORT=${TRANSITIVE_SLURM_DB_PORT:-3316}
PACKAGES=(munge mariadb-server slurmctld slurmd slurm-client slurmdbd)

say() { echo "slurm_up: $*" >&2; }
fail() { say "$*"; exit 1; }

# is the process named by pid file $1 alive?
alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# wait up to $1 seconds for the command that follows to succeed
wait_for() {
    local limit=$1; shift
    local end=$((SECONDS + limit))
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -lt $end ] || return 1
        sleep 0.3
    done
}

[ "$(id -u)" = 0 ] || fail "needs root (it installs packages and starts system daemons)"

# --- install what is missing ---------------------------------------------------------------------------
missing=0
for command in munged mariadbd mariadb-install-db slurmctld slurmd slurmdbd sinfo sbatch sacct; do
    command -v "$command" >/dev/null 2>&1 || missing=1
done
if [ $missing = 1 ]; then
    command -v apt-get >/dev/null 2>&1 || fail "SLURM is not installed and there is no apt-get to install it"
    say "installing ${PACKAGES[*]}"
    # the packages' own start scripts must not start anything (this script starts the daemons itself)
    made_policy=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q --no-install-recommends \
            "${PACKAGES[@]}" > "/tmp/slurm_up_apt.log" 2>&1
    }
    ok=1
    apt_install || { timeout 300 apt-get update -q >> /tmp/slurm_up_apt.log 2>&1 || true; apt_install; } || ok=0
    [ $made_policy = 0 ] || rm -f /usr/sbin/policy-rc.d
    [ $ok = 1 ] || fail "apt-get could not install ${PACKAGES[*]} (see /tmp/slurm_up_apt.log)"
fi

# --- configuration -----------------------------------------------------------------------------------------
for file in /etc/slurm/slurm.conf /etc/slurm/slurmdbd.conf; do
    if [ -e "$file" ] && ! grep -qF "$MARK" "$file"; then
        fail "$file exists and was not written by this script: not touching this machine's SLURM"
    fi
done
mkdir -p /etc/slurm "$STATE"/{ctld,d,log} /run/munge /var/log/munge /var/lib/munge
chown munge:munge /run/munge /var/log/munge /var/lib/munge
chmod 755 /run/munge

host=$(hostname -s)
cpus=$(nproc)
memory=$(awk '/MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)  # MB, a little under the total

cat > "$STATE/slurm.conf" <<EOF
$MARK
ClusterName=transitive
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# a requeued job may start again once the job credential has expired: 10 s instead of 120 s
AuthInfo=cred_expire=10
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=1,sched_min_interval=100000
MessageTimeout=10
KillWait=5
MinJobAge=60
ReturnToService=2
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
PreemptType=preempt/partition_prio
PreemptMode=REQUEUE
SlurmctldParameters=preempt_send_user_signal
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP PriorityTier=1 GraceTime=60
PartitionName=high Nodes=$host MaxTime=INFINITE State=UP PriorityTier=10 PreemptMode=OFF
EOF
cat > "$STATE/slurmdbd.conf" <<EOF
$MARK
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
PidFile=$STATE/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOF
# SLURM's commands read /etc/slurm; a changed configuration needs the daemons restarted
changed=0
for name in slurm.conf slurmdbd.conf; do
    cmp -s "$STATE/$name" "/etc/slurm/$name" || { install -m 600 "$STATE/$name" "/etc/slurm/$name"; changed=1; }
done
chmod 644 /etc/slurm/slurm.conf
if [ $changed = 1 ]; then
    for daemon in slurmd slurmctld slurmdbd; do
        if alive "$STATE/$daemon.pid"; then
            say "configuration changed: restarting $daemon"
            kill "$(cat "$STATE/$daemon.pid")"
            wait_for 20 bash -c "! kill -0 $(cat "$STATE/$daemon.pid")" || fail "$daemon did not stop"
        fi
    done
fi

# --- munge -----------------------------------------------------------------------------------------------
if ! alive /run/munge/munged.pid; then
    [ -s /etc/munge/munge.key ] || { mungekey --create --keyfile /etc/munge/munge.key 2>/dev/null \
        || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none; }
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
    runuser -u munge -- /usr/sbin/munged || fail "munged did not start (see /var/log/munge/munged.log)"
    touch "$STATE/munged.ours"  # slurm_down.sh stops only a munged started here
fi
wait_for 10 bash -c "munge -n | unmunge" || fail "munge does not answer"

# --- MariaDB (accounting) ----------------------------------------------------------------------------------
db="$STATE/mysql"
run="$STATE/mysql-run"  # socket and pid file, writable by the mysql user
sql() { mariadb --socket="$run/mysqld.sock" -u root "$@"; }
if ! alive "$run/mysqld.pid"; then
    if [ ! -d "$db/mysql" ]; then
        rm -rf "$db"
        mkdir -p "$db"
        chown mysql:mysql "$db"
        mariadb-install-db --user=mysql --datadir="$db" --auth-root-authentication-method=socket \
            --skip-test-db > "$STATE/log/mariadb-install.log" 2>&1 \
            || fail "mariadb-install-db failed (see $STATE/log/mariadb-install.log)"
    fi
    mkdir -p "$run"
    touch "$STATE/log/mariadb.log"
    chown mysql:mysql "$run" "$STATE/log/mariadb.log"
    mariadbd --no-defaults --user=mysql --datadir="$db" --socket="$run/mysqld.sock" \
        --pid-file="$run/mysqld.pid" --port="$DB_PORT" --bind-address=127.0.0.1 --skip-name-resolve \
        --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M >/dev/null 2>&1 &
    server=$!
    disown
    wait_for 60 bash -c "! kill -0 $server || mariadb --socket='$run/mysqld.sock' -u root -e 'select 1'"
    kill -0 $server 2>/dev/null || fail "MariaDB did not start (see $STATE/log/mariadb.log)"
fi
wait_for 60 sql -e "select 1" || fail "MariaDB does not answer (see $STATE/log/mariadb.log)"
sql -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not make MariaDB's slurm user"

# --- slurmdbd, slurmctld, slurmd -----------------------------------------------------------------------------
if ! alive "$STATE/slurmdbd.pid"; then
    slurmdbd || fail "slurmdbd did not start (see $STATE/log/slurmdbd.log)"
fi
wait_for 30 sacctmgr -n list cluster || fail "slurmdbd does not answer (see $STATE/log/slurmdbd.log)"
if ! sacctmgr -n -P list cluster format=cluster | grep -qx transitive; then
    sacctmgr -i add cluster transitive >/dev/null || fail "could not register the cluster with slurmdbd"
fi
if ! alive "$STATE/slurmctld.pid"; then
    slurmctld -c || fail "slurmctld did not start (see $STATE/log/slurmctld.log)"  # -c: no jobs from before
fi
wait_for 30 scontrol ping || fail "slurmctld does not answer (see $STATE/log/slurmctld.log)"
if ! alive "$STATE/slurmd.pid"; then
    slurmd || fail "slurmd did not start (see $STATE/log/slurmd.log)"
fi

node_state() { sinfo -h -N -n "$host" -o %T 2>/dev/null | head -1; }
end=$((SECONDS + 40))
until [ "$(node_state)" = idle ]; do
    state=$(node_state)
    case "$state" in
        down*|drain*|fail*) scontrol update nodename="$host" state=resume >/dev/null 2>&1 || true ;;
    esac
    [ $SECONDS -lt $end ] || fail "node $host is '$state', not idle (see $STATE/log/slurmd.log)"
    sleep 0.5
done
say "SLURM is up: node $host idle, partitions debug (default) and high; state in $STATE"
