# shellcheck shell=bash
# Sourced by tests/demo.sh and tests/run-all.sh: makes a fresh Debian 12 machine ready to
# build ha-setup (the -sys crates' build libraries, and Rust from rustup when there is no
# cargo: Debian 12's own Rust is too old for this crate).
missing=()
for package in gcc make pkg-config libssl-dev zlib1g-dev curl ca-certificates; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'ok installed' || missing+=("$package")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null; then
    echo "== installing Rust (stable, minimal, with rustfmt and clippy) with rustup"
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs |
        sh -s -- -y -q --profile minimal --component rustfmt,clippy --default-toolchain stable
    export PATH="$HOME/.cargo/bin:$PATH"
fi
