#!/usr/bin/env bash
# How fast a lost primary is replaced: time from `ha-setup recover promote` starting to the
# first write accepted on the new primary, against the operator's manual way (one ssh to
# the secondary: STOP SLAVE; RESET SLAVE ALL; read_only OFF; then a write), in the same
# run, on the lab's pair after the primary's MariaDB was killed with SIGKILL.
# As root: tests/bench/promote.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
runs=${1:-3}

cargo build --quiet --release --locked
bin="$PWD/target/release/ha-setup"
tests/lab/lab.sh up >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"
lab() { tests/lab/lab.sh "$@"; }
config="$HA_LAB_ROOT/bench-promote.toml"
tests/lab/lab.sh config >"$config"
ssh_opts="-i $HA_LAB_KEY -o UserKnownHostsFile=$HA_LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes"
state="$HA_LAB_ROOT/bench-promote-state"

fresh_pair_with_dead_primary() {
    lab reset >/dev/null
    rm -rf "$state"
    lab exec operator env HA_SETUP_STATE_DIR="$state" "$bin" init -c "$config" --yes >/dev/null 2>&1
    # shellcheck disable=SC2016 # expanded by the host's shell
    lab exec primary sh -c 'p=$(cat /run/mysqld/mysqld.pid); pp=$(ps -o ppid= -p $p | tr -d " "); kill -9 $pp $p; while kill -0 $p 2>/dev/null; do sleep 0.1; done'
}
ha_setup_promote() {
    lab exec operator bash -c "s=\$(date +%s.%N); HA_SETUP_STATE_DIR=$state $bin recover promote -c $config --yes >/dev/null 2>&1 &&
        ssh $ssh_opts root@$HA_LAB_SECONDARY_ADDR \"mariadb -e 'CREATE DATABASE IF NOT EXISTS bench'\" && e=\$(date +%s.%N); echo \"\$e - \$s\" | bc"
}
manual_promote() {
    lab exec operator bash -c "s=\$(date +%s.%N); ssh $ssh_opts root@$HA_LAB_SECONDARY_ADDR \"mariadb -e 'STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF; CREATE DATABASE IF NOT EXISTS bench'\" && e=\$(date +%s.%N); echo \"\$e - \$s\" | bc"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ours=() manual=()
for run in $(seq "$runs"); do
    fresh_pair_with_dead_primary
    ours+=("$(ha_setup_promote)")
    fresh_pair_with_dead_primary
    manual+=("$(manual_promote)")
    echo "run $run: ha-setup ${ours[-1]} s, manual ${manual[-1]} s"
done
o=$(printf '%s\n' "${ours[@]}" | median)
m=$(printf '%s\n' "${manual[@]}" | median)
printf 'median: ha-setup recover promote %.2f s to the first write, manual %.2f s: ratio %.1fx\n' "$o" "$m" "$(echo "$o / $m" | bc -l)"
lab reset >/dev/null
