#!/usr/bin/env bash
# Re-seeding a replica, end to end, in the same run, alternating:
#   pipeline  what an operator scripts by hand, on the primary:
#             mariadb-backup --backup --stream=xbstream | ssh secondary \
#               'mbstream -x -C DIR && mariadb-backup --prepare --target-dir=DIR'
#             (a copy only: no server started, no replication set up);
#   ha-setup  `ha-setup recover rebuild` from the operator: preflight, the streamed backup
#             (straight from the primary to the secondary), prepare, the swap, MariaDB
#             started, replication set up and proven with a canary.
# It prints both medians and the ratio. `wan` runs both through an emulated slow link: a tc
# token bucket (100 Mbit/s) on the primary's and the secondary's links, inside their own
# network namespaces (this machine's kernel has no netem, so no added delay).
# As root: tests/bench/seed.sh [SIZE_MIB] [RUNS] [lan|wan]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}
net=${3:-lan}

cargo build --quiet --release --locked
bin="$PWD/target/release/ha-setup"
tests/lab/lab.sh up >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"
lab() { tests/lab/lab.sh "$@"; }
config="$HA_LAB_ROOT/bench-seed.toml"
tests/lab/lab.sh config >"$config"
state="$HA_LAB_ROOT/bench-seed-state"
key_dir=/root/.ha-bench-seed

# The host's own links (ip reads its network namespace; /sys may be the machine's).
# shellcheck disable=SC2016 # expanded by the host's shell
links='ip -o link show | awk -F": " "{ print \$2 }" | cut -d@ -f1 | grep -vx lo'
cleanup() {
    lab exec primary rm -rf "$key_dir" >/dev/null 2>&1 || true
    lab exec secondary sh -c "sed -i '/ha-bench-seed/d' /root/.ssh/authorized_keys; rm -rf /var/lib/mysql/.bench-pipeline" >/dev/null 2>&1 || true
    for h in primary secondary; do
        lab exec "$h" sh -c "for i in \$($links); do tc qdisc del dev \$i root 2>/dev/null; done; true" >/dev/null 2>&1 || true
    done
}
trap cleanup EXIT

# Rows like an application's, each its own: about half random bytes (compressed or
# encrypted columns), half text and hex digests, about 1 KiB each.
echo "building ${size_mib} MiB of rows on the primary, and a pair with ha-setup init" >&2
lab reset >/dev/null
rm -rf "$state"
lab exec primary mariadb -e "CREATE DATABASE app;
    CREATE TABLE app.blobs (id INT AUTO_INCREMENT PRIMARY KEY, b BLOB) ENGINE=InnoDB;
    INSERT INTO app.blobs (b) SELECT CONCAT(RANDOM_BYTES(448), 'customer ', seq, '; mail user', seq,
        '@example.com; ', SHA2(seq, 256), '; ', SHA2(seq + 1, 256), '; ', SHA2(seq + 2, 256),
        '; status shipped; ', MD5(seq), '; ', MD5(seq * 3), '; ', MD5(seq * 7))
        FROM app.seq_1_to_$((size_mib * 1024));"
lab exec operator env HA_SETUP_STATE_DIR="$state" "$bin" init -c "$config" --yes >/dev/null 2>&1
data=$(lab exec primary du -s -B1M /var/lib/mysql | cut -f1)

# The hand-written pipeline's own key, primary to secondary (what an operator would set up).
lab exec primary sh -c "rm -rf $key_dir && mkdir -m 700 $key_dir && ssh-keygen -q -t ed25519 -N '' -C ha-bench-seed -f $key_dir/key"
pub=$(lab exec primary cat "$key_dir/key.pub")
lab exec secondary sh -c "printf '%s\n' '$pub' >> /root/.ssh/authorized_keys"
lab exec primary sh -c "ssh-keyscan -t ed25519 $HA_LAB_SECONDARY_ADDR > $key_dir/known 2>/dev/null"

if [ "$net" = wan ]; then
    echo "emulated slow link: 100 Mbit/s on the primary's and the secondary's links" >&2
    for h in primary secondary; do
        lab exec "$h" sh -c "for i in \$($links); do tc qdisc replace dev \$i root tbf rate 100mbit burst 256kbit latency 50ms; done"
    done
fi

pipeline() {
    lab exec secondary rm -rf /var/lib/mysql/.bench-pipeline
    local s e
    s=$(date +%s.%N)
    lab exec primary bash -o pipefail -c "mariadb-backup --backup --stream=xbstream --user=root 2>/dev/null |
        ssh -i $key_dir/key -o UserKnownHostsFile=$key_dir/known -o BatchMode=yes root@$HA_LAB_SECONDARY_ADDR \
        'mkdir -p /var/lib/mysql/.bench-pipeline && mbstream -x -C /var/lib/mysql/.bench-pipeline &&
         mariadb-backup --prepare --target-dir=/var/lib/mysql/.bench-pipeline >/dev/null 2>&1'"
    e=$(date +%s.%N)
    lab exec secondary rm -rf /var/lib/mysql/.bench-pipeline
    echo "$e - $s" | bc
}
rebuild() {
    local s e
    s=$(date +%s.%N)
    lab exec operator env HA_SETUP_STATE_DIR="$state" "$bin" recover rebuild -c "$config" --yes >"$HA_LAB_ROOT/bench-seed.log" 2>&1 ||
        { cat "$HA_LAB_ROOT/bench-seed.log" >&2; exit 1; }
    e=$(date +%s.%N)
    # The old data of each rebuild is kept (moved aside): clear it between runs.
    lab exec secondary sh -c 'rm -rf /var/lib/mysql/.ha-setup-old/*'
    echo "$e - $s" | bc
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ours=() hand=()
for run in $(seq "$runs"); do
    hand+=("$(pipeline)")
    ours+=("$(rebuild)")
    echo "run $run: pipeline ${hand[-1]} s, ha-setup recover rebuild ${ours[-1]} s" >&2
done
grep -E 'straight from|through this machine' "$HA_LAB_ROOT/bench-seed.log" | sed 's/^ */last rebuild: /' >&2

# ha-setup's own memory on both ends of one seed: the peak resident size of `bundle stream`
# on the primary (polled: its child mariadb-backup is not counted) and of `bundle unpack`
# on the secondary (GNU time).
tool=$(lab exec primary sh -c 'ls /var/lib/ha-setup/bin/ha-setup-* | head -n 1')
version=$(lab exec primary mariadb -N -e 'SELECT VERSION()')
lab exec secondary rm -rf /var/lib/mysql/.bench-memory
# shellcheck disable=SC2016 # expanded by the host's shell
lab exec primary bash -c "$tool bundle stream --engine mariadb --server-version '$version' --source-host bench --work /var/lib/ha-setup/bench-stream --compress none & p=\$!
    hwm=0; while kill -0 \$p 2>/dev/null; do h=\$(awk '/VmHWM/ { print \$2 }' /proc/\$p/status 2>/dev/null); [ -n \"\$h\" ] && hwm=\$h; sleep 0.1; done
    echo \$hwm > /var/lib/ha-setup/bench-stream.hwm" |
    lab exec secondary /usr/bin/time -f '%M' -o /var/lib/ha-setup/bench-unpack.rss \
        "$tool" bundle unpack --into /var/lib/mysql/.bench-memory >/dev/null
sent_kib=$(lab exec primary cat /var/lib/ha-setup/bench-stream.hwm)
unpack_kib=$(lab exec secondary cat /var/lib/ha-setup/bench-unpack.rss)
lab exec primary rm -f /var/lib/ha-setup/bench-stream.hwm
lab exec secondary sh -c 'rm -rf /var/lib/mysql/.bench-memory /var/lib/ha-setup/bench-unpack.rss'
printf 'memory for a %s MiB datadir: bundle stream %s MiB, bundle unpack %s MiB (peak resident)\n' \
    "$data" "$((sent_kib / 1024))" "$((unpack_kib / 1024))"
o=$(printf '%s\n' "${ours[@]}" | median)
h=$(printf '%s\n' "${hand[@]}" | median)
printf '%s, %s MiB datadir: median pipeline %.1f s, ha-setup recover rebuild %.1f s: ratio %.2fx\n' \
    "$net" "$data" "$h" "$o" "$(echo "$o / $h" | bc -l)"
