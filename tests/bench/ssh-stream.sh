#!/usr/bin/env bash
# Streams 1 GiB from the operator to the lab's secondary, in the same run, alternating:
#   ssh        OpenSSH's own `ssh host 'cat > f'` (aes128-gcm): the reference;
#   checked    the same by hand, checked: `ssh host 'cat > f'` with `openssl dgst -sha256`
#              of the file here and there, compared (what a careful operator types);
#   host       the Host layer's stream_in: SHA-256 on the fly here, checked on the far side,
#              partial file renamed into place (bulk commands go through OpenSSH's `ssh`);
#   channel    the Host layer's bulk channel alone (`cat > f` through Host::exec, no digest);
#   libssh2    stream_in with bulk_via_openssh = false: every byte through libssh2.
# Prints each time, the medians and the ratios to the reference.
# As root: tests/bench/ssh-stream.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}

tests/lab/lab.sh up >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"
bench=$(cargo bench --bench stream --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\))$/\1/p' | tail -1)
[ -x "$bench" ] || { echo "ssh-stream.sh: could not build the bench driver" >&2; exit 1; }
bench=$PWD/$bench

lab() { tests/lab/lab.sh "$@"; }
source_file=/tmp/ha-bench-source.bin
lab exec operator sh -c "head -c ${size_mib}M /dev/urandom > $source_file"
ssh_opts="-i $HA_LAB_KEY -o UserKnownHostsFile=$HA_LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes -c aes128-gcm@openssh.com"
remote="root@$HA_LAB_SECONDARY_ADDR"
times=$(mktemp -d)
trap 'rm -rf "$times"' EXIT

# Each prints the seconds it took.
timed() { lab exec operator bash -c "s=\$(date +%s.%N); $1; e=\$(date +%s.%N); echo \"\$e - \$s\" | bc"; }
run_ssh() { timed "ssh $ssh_opts $remote 'cat > /tmp/ha-bench-ssh.bin' < $source_file" | tail -1; }
run_checked() {
    timed "ssh $ssh_opts $remote 'cat > /tmp/ha-bench-ssh.bin' < $source_file; \
        here=\$(openssl dgst -sha256 -r < $source_file | cut -d' ' -f1); \
        there=\$(ssh $ssh_opts $remote 'openssl dgst -sha256 -r < /tmp/ha-bench-ssh.bin' | cut -d' ' -f1); \
        [ \"\$here\" = \"\$there\" ] || { echo mismatch >&2; exit 1; }" | tail -1
}
driver() {
    lab exec operator env HA_LAB_PRIMARY_ADDR="$HA_LAB_PRIMARY_ADDR" HA_LAB_SECONDARY_ADDR="$HA_LAB_SECONDARY_ADDR" \
        HA_LAB_KEY="$HA_LAB_KEY" HA_LAB_KNOWN_HOSTS="$HA_LAB_KNOWN_HOSTS" "$@" "$bench" "$source_file" | cut -d' ' -f1
}
run_host() { driver; }
run_channel() { driver HA_BENCH_RAW=1; }
run_libssh2() { driver HA_BENCH_LANE=libssh2; }
median() { sort -n "$1" | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# Machine-wide busy CPU (jiffies) around each variant: on this lab both ends share the cores.
busy() { awk '/^cpu /{ print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
variants="ssh checked host channel libssh2"
echo "streaming ${size_mib} MiB from the operator to the secondary, ${runs} runs each, alternating"
for run in $(seq "$runs"); do
    line="run $run:"
    for variant in $variants; do
        before=$(busy)
        "run_$variant" >> "$times/$variant"
        echo "$(( $(busy) - before ))" >> "$times/$variant.cpu"
        line="$line $variant $(tail -1 "$times/$variant") s,"
    done
    echo "${line%,}"
done
reference=$(median "$times/ssh")
for variant in $variants; do
    m=$(median "$times/$variant")
    cpu=$(median "$times/$variant.cpu")
    printf '%-8s median %6.2f s  %4s MiB/s  CPU %5.1f s  ratio to ssh %s\n' "$variant" "$m" \
        "$(echo "scale=0; $size_mib / $m" | bc)" "$(echo "scale=2; $cpu / $(getconf CLK_TCK)" | bc)" \
        "$(echo "scale=2; $m / $reference" | bc)"
done
echo "host / checked: $(echo "scale=2; $(median "$times/host") / $(median "$times/checked")" | bc)"

lab exec operator rm -f "$source_file"
lab exec secondary rm -f /tmp/ha-bench-host.bin /tmp/ha-bench-ssh.bin
