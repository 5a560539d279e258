#!/usr/bin/env bash
# A single-node SLURM on this machine, everything in one folder: a munge key and daemon, a
# generated slurm.conf (SlurmUser root, no accounting, this host as the only node), slurmctld
# and slurmd. For trying `heatfront submit` without a cluster, and for Tests/ClusterTests.
#
#   scripts/local-slurm.sh start DIR   # starts the daemons; prints the SLURM_CONF to export
#   scripts/local-slurm.sh stop DIR    # stops exactly the daemons started in DIR (their pid files)
#
# Needs root (munged and slurmd run as root here) and Debian's slurm-wlm and munge packages
# (scripts/install-slurm.sh). Ports are chosen at random so that several instances can run
# side by side. The daemons' pids are in DIR/*.pid, their logs in DIR/*.log.
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 64; }

stop() {
    local pids=()
    for name in slurmd slurmctld munged; do
        [ -f "$dir/$name.pid" ] || continue
        local pid; pid=$(cat "$dir/$name.pid")
        if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill "$pid"; pids+=("$pid"); fi
    done
    for _ in $(seq 100); do
        local alive=0
        for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && return 0
        sleep 0.1
    done
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
}

if [ "$cmd" = stop ]; then stop; exit 0; fi
[ "$cmd" = start ] || { echo "usage: $0 start|stop DIR" >&2; exit 64; }
[ "$(id -u)" -eq 0 ] || { echo "local-slurm: needs root (munged and slurmd run as root)" >&2; exit 77; }
for tool in munged slurmctld slurmd sbatch squeue scontrol; do
    command -v "$tool" >/dev/null || [ -x "/usr/sbin/$tool" ] || {
        echo "local-slurm: $tool not found: install slurm-wlm and munge (scripts/install-slurm.sh)" >&2; exit 77; }
done
export PATH="$PATH:/usr/sbin"
dir=$(mkdir -p "$dir" && cd "$dir" && pwd)
mkdir -p "$dir/state" "$dir/spool"
chmod 700 "$dir"

# Descriptors the caller left open (a test runner's pipes and sockets) must not live on in
# the daemons: the caller would wait for them to close.
for fd in /proc/$$/fd/*; do
    fd=${fd##*/}
    [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null || true
done

# munge: its own key (mode 600), socket, pid, log and seed files.
dd if=/dev/urandom of="$dir/munge.key" bs=1024 count=1 status=none
chmod 600 "$dir/munge.key"
munged --force --key-file="$dir/munge.key" --socket="$dir/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/munged.log" --seed-file="$dir/munged.seed"

host=$(hostname -s)
mem_mb=$(awk '/MemTotal/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
port=$((20000 + RANDOM % 20000))
cat > "$dir/slurm.conf" <<EOF
ClusterName=heatfront-local
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge.socket
CredType=cred/munge
SlurmctldPort=$port
SlurmdPort=$((port + 1))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=$mem_mb State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF="$dir/slurm.conf"
slurmctld -i
slurmd
# Ready when the node is idle (it registers with the controller within a few seconds).
for _ in $(seq 150); do
    state=$(sinfo --noheader --format=%T 2>/dev/null || true)
    [ "$state" = idle ] && { echo "export SLURM_CONF=$dir/slurm.conf"; exit 0; }
    sleep 0.2
done
echo "local-slurm: the node did not become idle (state '${state:-none}'); see $dir/slurmctld.log and $dir/slurmd.log" >&2
stop
exit 1
