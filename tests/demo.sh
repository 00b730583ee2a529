#!/usr/bin/env bash
# The main job on the built-in lab, as root on a Debian 12 machine: brings up two database
# hosts and an operator (tests/lab), writes the lab's ha-setup.toml, and shows that ha-setup
# on the operator accepts it and that both hosts answer over SSH with their databases.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/demo.sh: run as root: the lab makes network and mount namespaces" >&2
    exit 2
fi
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
command -v cargo >/dev/null || { echo "tests/demo.sh: install Rust 1.88 or newer with rustup first" >&2; exit 2; }
for package in gcc make pkg-config libssl-dev zlib1g-dev; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || {
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc make pkg-config libssl-dev zlib1g-dev >/dev/null
        break
    }
done

echo "== building ha-setup"
cargo build --quiet --locked
bin="$PWD/target/debug/ha-setup"

echo "== bringing up the lab"
tests/lab/lab.sh up
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"

config="$HA_LAB_ROOT/ha-setup.toml"
cat > "$config" <<TOML
# The lab pair: written by tests/demo.sh.
engine = "mariadb"

[primary]
host = "$HA_LAB_PRIMARY_ADDR"
ssh_user = "root"
identity_file = "$HA_LAB_KEY"

[secondary]
host = "$HA_LAB_SECONDARY_ADDR"
ssh_user = "root"
identity_file = "$HA_LAB_KEY"

[ssh]
known_hosts = "$HA_LAB_KNOWN_HOSTS"
host_key_policy = "strict"
TOML

echo "== ha-setup config check, on the operator"
tests/lab/lab.sh exec operator "$bin" config check -c "$config"

echo "== both hosts, over SSH from the operator"
for host in primary secondary; do
    tests/lab/lab.sh ssh "$host" 'printf "%-10s %s\n" "$(hostname)" "$(mariadb -N -e "select concat(\"MariaDB \", @@version)")"; printf "%-10s PostgreSQL %s\n" "$(hostname)" "$(cd / && runuser -u postgres -- psql -Atc "show server_version")"'
done
echo
echo "The lab stays up: tests/lab/lab.sh ssh primary ..., tests/lab/lab.sh down to remove it."
