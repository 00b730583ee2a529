#!/usr/bin/env bash
# Streams 1 GiB from the operator to the lab's secondary, through ha-setup's Host layer
# (SHA-256 on the fly, checked on the far side, atomic rename) and through OpenSSH's own
# `ssh host 'cat > f'`, alternating, in the same run; prints each time and the ratio.
# As root: tests/bench/ssh-stream.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}

tests/lab/lab.sh up >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"
bench=$(cargo bench --bench stream --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bench" ] || { echo "ssh-stream.sh: could not build the bench driver" >&2; exit 1; }

lab() { tests/lab/lab.sh "$@"; }
source_file=/tmp/ha-bench-source.bin
lab exec operator sh -c "head -c ${size_mib}M /dev/urandom > $source_file"
ssh_opts="-i $HA_LAB_KEY -o UserKnownHostsFile=$HA_LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes"

openssh() {
    local cipher=$1
    lab exec operator bash -c "s=\$(date +%s.%N); ssh $ssh_opts ${cipher:+-c $cipher} root@$HA_LAB_SECONDARY_ADDR 'cat > /tmp/ha-bench-ssh.bin' < $source_file; e=\$(date +%s.%N); echo \"\$e - \$s\" | bc"
}
host_layer() {
    lab exec operator env HA_LAB_PRIMARY_ADDR="$HA_LAB_PRIMARY_ADDR" HA_LAB_SECONDARY_ADDR="$HA_LAB_SECONDARY_ADDR" \
        HA_LAB_KEY="$HA_LAB_KEY" HA_LAB_KNOWN_HOSTS="$HA_LAB_KNOWN_HOSTS" "$bench" "$source_file" | cut -d' ' -f1
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "streaming ${size_mib} MiB to the secondary, ${runs} runs each, alternating"
: > /tmp/ha-bench-host.times; : > /tmp/ha-bench-gcm.times; : > /tmp/ha-bench-default.times
for run in $(seq "$runs"); do
    host_layer >> /tmp/ha-bench-host.times
    openssh aes128-gcm@openssh.com >> /tmp/ha-bench-gcm.times
    openssh "" >> /tmp/ha-bench-default.times
    echo "run $run: ha-setup $(tail -1 /tmp/ha-bench-host.times) s, ssh aes128-gcm $(tail -1 /tmp/ha-bench-gcm.times) s, ssh default cipher $(tail -1 /tmp/ha-bench-default.times) s"
done
host=$(median < /tmp/ha-bench-host.times)
gcm=$(median < /tmp/ha-bench-gcm.times)
default=$(median < /tmp/ha-bench-default.times)
mib_s() { echo "scale=0; $size_mib / $1" | bc; }
echo "median: ha-setup Host layer ${host} s ($(mib_s "$host") MiB/s); OpenSSH 'cat > f' aes128-gcm ${gcm} s ($(mib_s "$gcm") MiB/s), default cipher ${default} s ($(mib_s "$default") MiB/s)"
echo "ratio ha-setup / OpenSSH (aes128-gcm): $(echo "scale=2; $host / $gcm" | bc)"
echo "ratio ha-setup / OpenSSH (default cipher): $(echo "scale=2; $host / $default" | bc)"

lab exec operator rm -f "$source_file"
lab exec secondary rm -f /tmp/ha-bench-host.bin /tmp/ha-bench-ssh.bin
rm -f /tmp/ha-bench-host.times /tmp/ha-bench-gcm.times /tmp/ha-bench-default.times
