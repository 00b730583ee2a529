#!/usr/bin/env bash
# Moves a backup-like directory from D to E, in the same run, three ways, and prints each
# time and the ratios:
#   ha-setup   `ha-setup bundle pack --dir D … | ha-setup bundle unpack --into E`: the
#              streamed path (every file hashed on the way out, checked on the way in,
#              made durable);
#   zip        the manual approach of the PMP guide: `zip -r` to a file, then `unzip`;
#   tar        `tar -C D -cf - . | tar -C E -xf -`: a plain copy through a pipe, no checks.
# zip and tar are followed by `sync` inside their timing, since unpack fsyncs every file.
# Then, on the large files alone, what compression would cost: `gzip -1` next to
# `bundle pack > /dev/null`, and one pass of `openssl dgst -sha256` (SHA-NI where the CPU
# has it, as ha-setup's sha2 does) for the cost of hashing.
# The page cache is warm for all of them (the data was just written).
# tests/bench/bundle.sh [SIZE_MIB] [RUNS]
set -euo pipefail
cd "$(dirname "$0")/../.."
size_mib=${1:-1024}
runs=${2:-3}

cargo build --release -j 2 --bin ha-setup >&2
ha_setup=$PWD/target/release/ha-setup

work=$(mktemp -d /var/tmp/ha-bench-bundle.XXXXXX)
trap 'rm -rf "$work"' EXIT
src=$work/src
mkdir -p "$src"

# Realistic data: a few large files of 1 MiB chunks that are random (compressed pages),
# base64 text (rows of text, compressible to about 3/4) or zeros (empty pages), 2:1:1; and
# many small files (.frm/.MAD/small tables) of 16 KiB each in 32 database directories.
echo "building ${size_mib} MiB of data in $src" >&2
head -c 64M /dev/urandom > "$work/random"
base64 -w 100 "$work/random" > "$work/text"
head -c 64M /dev/zero > "$work/zeros"
small_count=$((size_mib * 2))
large_mib=$((size_mib - small_count * 16 / 1024))
large_file() { # NAME MIB
    local name=$1 mib=$2 i=0
    while [ "$i" -lt "$mib" ]; do
        case $((i % 4)) in
            0|2) seed=random ;;
            1) seed=text ;;
            3) seed=zeros ;;
        esac
        dd if="$work/$seed" bs=1M skip=$(( (i / 4) % 64 )) count=1 status=none
        i=$((i + 1))
    done > "$src/$name"
}
large_file ibdata1 $((large_mib / 4))
for t in orders customers events; do
    mkdir -p "$src/shop"
    large_file "shop/$t.ibd" $((large_mib / 4))
done
for i in $(seq 0 $((small_count - 1))); do
    db=$src/db$((i % 32))
    mkdir -p "$db"
    dd if="$work/$(if [ $((i % 2)) = 0 ]; then echo random; else echo text; fi)" \
        bs=16K skip=$((i % 4096)) count=1 status=none of="$db/t$i.ibd"
done
mkdir -p "$src/empty_db"
printf 'mariadb-bin.000003\t385\t0-1-42\n' > "$src/xtrabackup_binlog_info"
rm -f "$work/random" "$work/text" "$work/zeros"
total_mib=$(du -sm --apparent-size "$src" | cut -f1)
echo "$(find "$src" -type f | wc -l) files, ${total_mib} MiB" >&2

seconds() { # runs "$@", prints the elapsed seconds
    local start end
    sync
    start=$(date +%s.%N)
    "$@" >/dev/null
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
streamed() {
    "$ha_setup" bundle pack --dir "$src" --engine mariadb --server-version 10.11.6 --source-host db1 \
        | "$ha_setup" bundle unpack --into "$work/dst"
    rm -rf "$work/dst"
}
manual_zip() {
    (cd "$src" && zip -qr "$work/manual.zip" .)
    unzip -q "$work/manual.zip" -d "$work/dst"
    sync
    rm -rf "$work/dst" "$work/manual.zip"
}
tar_pipe() {
    mkdir "$work/dst"
    tar -C "$src" -cf - . | tar -C "$work/dst" -xf -
    sync
    rm -rf "$work/dst"
}
median() { sort -n | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo "moving ${total_mib} MiB from one directory to another, ${runs} runs each, alternating"
: > "$work/ha.times"; : > "$work/zip.times"; : > "$work/tar.times"
for run in $(seq "$runs"); do
    seconds streamed >> "$work/ha.times"
    seconds manual_zip >> "$work/zip.times"
    seconds tar_pipe >> "$work/tar.times"
    echo "run $run: ha-setup $(tail -1 "$work/ha.times") s, zip -r + unzip $(tail -1 "$work/zip.times") s, tar | tar $(tail -1 "$work/tar.times") s"
done
ha=$(median < "$work/ha.times")
zip=$(median < "$work/zip.times")
tar=$(median < "$work/tar.times")
mib_s() { echo "scale=0; $total_mib / $1" | bc; }
echo "median: ha-setup pack | unpack ${ha} s ($(mib_s "$ha") MiB/s); zip -r + unzip ${zip} s ($(mib_s "$zip") MiB/s); tar | tar ${tar} s ($(mib_s "$tar") MiB/s)"
echo "ratio zip -r + unzip / ha-setup: $(echo "scale=2; $zip / $ha" | bc)"
echo "ratio ha-setup / tar | tar: $(echo "scale=2; $ha / $tar" | bc)"

# The large files alone: what a stream would cost with compression, and what hashing costs.
large=("$src/ibdata1" "$src"/shop/*.ibd)
large_total=$(cat "${large[@]}" | wc -c)
large_mib=$((large_total >> 20))
mkdir "$work/large"
ln "${large[@]}" "$work/large/"
pack_only() { "$ha_setup" bundle pack --dir "$work/large" --engine mariadb --server-version 10.11.6 --source-host db1 > /dev/null; }
gzip_only() { cat "${large[@]}" | gzip -1 > /dev/null; }
sha_only() { cat "${large[@]}" | openssl dgst -sha256 > /dev/null; }
pack=$(seconds pack_only)
gzip=$(seconds gzip_only)
sha=$(seconds sha_only)
large_mib_s() { echo "scale=0; $large_mib / $1" | bc; }
echo "large files (${large_mib} MiB): bundle pack > /dev/null ${pack} s ($(large_mib_s "$pack") MiB/s); gzip -1 ${gzip} s ($(large_mib_s "$gzip") MiB/s); openssl sha256 ${sha} s ($(large_mib_s "$sha") MiB/s)"
echo "ratio gzip -1 / bundle pack: $(echo "scale=2; $gzip / $pack" | bc)"
