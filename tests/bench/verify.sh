#!/usr/bin/env bash
# How fast `ha-setup verify` compares a MariaDB pair, beside what an operator does by hand:
# `CHECKSUM TABLE` on the primary, then on the secondary, each over ssh from the operator,
# in the same run, alternating. CHECKSUM TABLE reads each table whole, on each node at a
# different moment, and says only whether it differs; verify compares chunk by chunk at one
# logical point and names the key ranges. The table holds rows like an application's
# (about 1 KiB each, half random bytes, half text and hex digests).
# As root: tests/bench/verify.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-300}
runs=${2:-3}

cargo build --quiet --release --locked
bin="$PWD/target/release/ha-setup"
tests/lab/lab.sh up >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"
lab() { tests/lab/lab.sh "$@"; }
config="$HA_LAB_ROOT/bench-verify.toml"
tests/lab/lab.sh config >"$config"
state="$HA_LAB_ROOT/bench-verify-state"
ssh_opts="-i $HA_LAB_KEY -o UserKnownHostsFile=$HA_LAB_KNOWN_HOSTS -o StrictHostKeyChecking=yes -o BatchMode=yes"

echo "building ${size_mib} MiB of rows on the primary, and a pair with ha-setup init" >&2
lab reset >/dev/null
rm -rf "$state"
lab exec primary mariadb -e "CREATE DATABASE app;
    CREATE TABLE app.rows (id INT AUTO_INCREMENT PRIMARY KEY, b BLOB) ENGINE=InnoDB;
    INSERT INTO app.rows (b) SELECT CONCAT(RANDOM_BYTES(448), 'customer ', seq, '; mail user', seq,
        '@example.com; ', SHA2(seq, 256), '; ', SHA2(seq + 1, 256), '; ', SHA2(seq + 2, 256),
        '; status shipped; ', MD5(seq), '; ', MD5(seq * 3), '; ', MD5(seq * 7))
        FROM app.seq_1_to_$((size_mib * 1024));
    ANALYZE TABLE app.rows;" >/dev/null
lab exec operator env HA_SETUP_STATE_DIR="$state" "$bin" init -c "$config" --yes >/dev/null 2>&1
rows=$(lab exec primary mariadb -N -e "SELECT COUNT(*) FROM app.rows")
data_mib=$(lab exec primary mariadb -N -e "SELECT ROUND((DATA_LENGTH + INDEX_LENGTH) / 1048576) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'app' AND TABLE_NAME = 'rows'")
echo "app.rows: $rows rows, $data_mib MiB on disk" >&2

# Seconds, with the result line of each run kept for the report.
ha_setup_verify() {
    lab exec operator bash -c "s=\$(date +%s.%N); HA_SETUP_STATE_DIR=$state $bin verify -q -c $config --format json > /tmp/bench-verify.json; rc=\$?;
        e=\$(date +%s.%N); [ \$rc -eq 0 ] || { echo \"verify exited \$rc\" >&2; exit 1; }; echo \"\$e - \$s\" | bc"
}
checksum_table_by_hand() {
    lab exec operator bash -c "s=\$(date +%s.%N);
        for h in $HA_LAB_PRIMARY_ADDR $HA_LAB_SECONDARY_ADDR; do ssh $ssh_opts root@\$h \"mariadb -N -e 'CHECKSUM TABLE app.rows'\" >/dev/null || exit 1; done;
        e=\$(date +%s.%N); echo \"\$e - \$s\" | bc"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

ours=() manual=()
for run in $(seq "$runs"); do
    ours+=("$(ha_setup_verify)")
    manual+=("$(checksum_table_by_hand)")
    echo "run $run: ha-setup verify ${ours[-1]} s, CHECKSUM TABLE on both nodes ${manual[-1]} s" >&2
done
chunks=$(lab exec operator sh -c "grep -m1 '\"chunks\"' /tmp/bench-verify.json | tr -dc 0-9")
o=$(printf '%s\n' "${ours[@]}" | median)
m=$(printf '%s\n' "${manual[@]}" | median)
printf 'median of %s runs, %s rows (%s MiB): ha-setup verify %.2f s (%s chunks, %.0f rows/s, %.1f MiB/s); CHECKSUM TABLE on both nodes by hand %.2f s (%.1f MiB/s per node); ratio %.2fx\n' \
    "$runs" "$rows" "$data_mib" "$o" "$chunks" "$(echo "$rows / $o" | bc -l)" "$(echo "$data_mib / $o" | bc -l)" \
    "$m" "$(echo "2 * $data_mib / $m" | bc -l)" "$(echo "$o / $m" | bc -l)"
lab reset >/dev/null
