#!/usr/bin/env bash
# Every test of ha-setup, on a fresh Debian 12 machine, as root: installs what is missing,
# checks formatting and lints, brings the lab up, runs `cargo test` with the lab tests,
# and tears the lab down again (HA_LAB_KEEP=1 leaves it up for a closer look).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/run-all.sh: run as root: the lab makes network and mount namespaces" >&2
    exit 2
fi

# shellcheck source=tests/prepare.sh
. tests/prepare.sh

export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
# Two cores: one build job per core, and no more test threads than that.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"

echo "== shellcheck (scripts the binary embeds, and the project's own)"
if ! command -v shellcheck >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck >/dev/null
fi
find src tests .ci \( -name '*.sh' -o -path .ci/run \) -exec shellcheck {} +

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --locked --all-targets --quiet -- -D warnings
echo "== cargo build"
cargo build --locked --all-targets --quiet

# Three labs side by side, one lab test on each at a time: a lab test spends most of its
# time waiting on servers, SSH and bounded timeouts rather than on the two cores.
export HA_LAB_INSTANCES="${HA_LAB_INSTANCES:-1 2 3}"
read -ra lab_list <<<"$HA_LAB_INSTANCES"
threads=${#lab_list[@]}
labs() {
    local n
    for n in $HA_LAB_INSTANCES; do HA_LAB_INSTANCE=$n tests/lab/lab.sh "$@"; done
}
if [ "${HA_LAB_KEEP:-}" != 1 ]; then
    trap 'echo "== lab down"; labs down' EXIT
fi
echo "== lab up ($HA_LAB_INSTANCES)"
labs up

echo "== cargo test (with the lab tests, $threads at a time)"
cargo test --locked -- --include-ignored --test-threads="$threads"
