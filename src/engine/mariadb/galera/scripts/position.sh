#!/bin/sh
# Reads a stopped Galera node's last committed position from InnoDB, as MariaDB itself does
# before it starts after a crash: `mariadbd --wsrep-recover` (InnoDB's crash recovery, then
# the position it recovered, and exit; nothing else starts). grastate.dat holds it only
# after a clean stop.
# Output: UUID:SEQNO. Exit 3 when mariadbd runs (its files are in use), 1 on any failure,
# with the end of what mariadbd said on stderr.
if pgrep -x mariadbd >/dev/null 2>&1; then
	echo 'mariadbd runs there: its position is the running server'"'"'s, not the files'"'" >&2
	exit 3
fi
log=$(mktemp /tmp/ha-setup-wsrep-recover.XXXXXX) || exit 1
trap 'rm -f -- "$log"' EXIT
chown mysql -- "$log" 2>/dev/null
timeout 600 mariadbd --user=mysql --wsrep-recover --log-error="$log" >/dev/null 2>&1
rc=$?
position=$(sed -n 's/.*WSREP: Recovered position: *//p' "$log" | tail -n 1)
if [ -z "$position" ]; then
	echo "mariadbd --wsrep-recover found no position (exit $rc):" >&2
	tail -n 5 -- "$log" >&2
	exit 1
fi
printf '%s\n' "$position"
