#!/usr/bin/env bash
# The main job on the built-in lab, as root on a Debian 12 machine: brings up two MariaDB
# hosts and an operator (tests/lab), puts an application's data on the primary, and runs
# ha-setup on the operator the way an operator would: the plan, `init --yes`, then
# `status`, and shows a row written on the primary arriving on the secondary.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
    echo "tests/demo.sh: run as root: the lab makes network and mount namespaces" >&2
    exit 2
fi
# shellcheck source=tests/prepare.sh
. tests/prepare.sh

echo "== building ha-setup"
cargo build --quiet --locked
bin="$PWD/target/debug/ha-setup"

echo "== bringing up the lab (two fresh MariaDB hosts and an operator)"
tests/lab/lab.sh up
tests/lab/lab.sh reset >/dev/null
eval "$(tests/lab/lab.sh env | sed 's/^/export /')"

echo "== the application's data on the primary"
tests/lab/lab.sh exec primary mariadb -e "
    CREATE DATABASE shop;
    CREATE TABLE shop.orders (id INT AUTO_INCREMENT PRIMARY KEY, item VARCHAR(40), placed DATETIME);
    INSERT INTO shop.orders (item, placed) VALUES ('keyboard', NOW()), ('monitor', NOW()), ('cable', NOW());"
tests/lab/lab.sh exec primary mariadb -e "SELECT * FROM shop.orders"

config="$HA_LAB_ROOT/ha-setup.toml"
tests/lab/lab.sh config >"$config"
on_operator() { tests/lab/lab.sh exec operator env HA_SETUP_STATE_DIR="$HA_LAB_ROOT/demo-state" "$bin" "$@"; }
rm -rf "$HA_LAB_ROOT/demo-state"

echo
echo "== ha-setup plan -c $config   (on the operator: what init would do, nothing changed)"
on_operator plan -c "$config"
echo
echo "== ha-setup init -c $config --yes"
on_operator init -c "$config" --yes
echo
echo "== ha-setup status -c $config"
on_operator status -c "$config"
echo
echo "== a new order on the primary, read on the secondary"
tests/lab/lab.sh exec primary mariadb -e "INSERT INTO shop.orders (item, placed) VALUES ('docking station', NOW())"
sleep 1
tests/lab/lab.sh exec secondary mariadb -e "SELECT * FROM shop.orders"
echo
echo "The lab stays up: try tests/lab/lab.sh exec operator $bin status -c $config --format json,"
echo "and tests/lab/lab.sh down to remove it."
