#!/bin/sh
# On the sending host, as root: a one-time key for a direct route. Its private half never
# leaves this host; the public half is printed for the receiving host's authorized_keys.
# Arguments: DIR (emptied, made 0700), COMMENT (the key's comment, which names the run),
# TARGET (the receiving host's address), KNOWN (its known_hosts line, as the operator
# checked it). Output: `pub=` the public key line, `from=` this host's address towards
# TARGET (empty when it cannot be told).
set -eu
dir=$1 comment=$2 target=$3 known=$4
for tool in ssh ssh-keygen; do
	command -v "$tool" >/dev/null 2>&1 || {
		echo "$tool is missing on this host: install openssh-client" >&2
		exit 3
	}
done
rm -rf -- "$dir"
mkdir -p -- "$(dirname -- "$dir")"
mkdir -m 0700 -- "$dir"
ssh-keygen -q -t ed25519 -N '' -C "$comment" -f "$dir/key" </dev/null >/dev/null
printf '%s\n' "$known" >"$dir/known_hosts"
printf 'pub=%s\n' "$(cat -- "$dir/key.pub")"
addr=$(getent ahosts "$target" 2>/dev/null | awk 'NR == 1 { print $1 }') || addr=
from=
if [ -n "$addr" ] && command -v ip >/dev/null 2>&1; then
	from=$(ip -o route get "$addr" 2>/dev/null | sed -n 's/.* src \([^ ]*\).*/\1/p' | head -n 1) || from=
fi
printf 'from=%s\n' "$from"
