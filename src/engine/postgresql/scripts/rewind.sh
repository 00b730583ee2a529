#!/bin/sh
# Rewinds an old primary onto the new primary's history with pg_rewind, in one action on
# the host: its WAL is copied aside first (kept, with what the new primary never got), the
# cluster is stopped, pg_rewind runs as postgres (logging in as the rewind role, not a
# superuser), standby.signal is written again (the node starts as a standby, fenced), and
# the cluster is started to stream from the new primary.
# Arguments: data directory, where the WAL is kept, the stop command, the start command,
# pg_rewind's path, the source's connection string, the cluster's postgresql.conf.
# SIGHUP is ignored: a lost connection must not stop this half-way.
trap '' HUP
set -u
datadir=$1
keep=$2
stop=$3
start=$4
rewind=$5
source=$6
conf=$7

if ! { mkdir -p -- "$keep" && cp -a -- "$datadir/pg_wal/." "$keep/"; }; then
	echo "cannot copy the WAL aside into $keep; nothing was changed" >&2
	exit 1
fi
echo "the WAL as it was (with what the new primary never got) is kept in $keep"
sh -c "$stop" || {
	echo "PostgreSQL did not stop; nothing was rewound (the WAL copy stays in $keep)" >&2
	exit 1
}
log=$keep.pg_rewind.log
# A dry run first: pg_rewind needs this node's WAL back to the last checkpoint both
# histories share, and when it is gone nothing must be half-rewound. The node then starts
# again as it was (fenced) and the refusal says so (exit 3).
if ! (cd / && runuser -u postgres -- "$rewind" --dry-run --target-pgdata="$datadir" --config-file="$conf" --source-server="$source") >"$log" 2>&1; then
	tail -n 5 -- "$log" >&2
	if sh -c "$start"; then
		echo "pg_rewind cannot rewind this node (its dry run, above): it runs again as before, fenced (read-only), nothing changed but its WAL copy in $keep. Re-seed it instead: ha-setup recover rebuild" >&2
	else
		echo "pg_rewind cannot rewind this node (its dry run, above), and PostgreSQL did not start again: read its log in /var/log/postgresql, then re-seed it: ha-setup recover rebuild" >&2
	fi
	exit 3
fi
if ! (cd / && runuser -u postgres -- "$rewind" --target-pgdata="$datadir" --config-file="$conf" --source-server="$source" --progress) >"$log" 2>&1; then
	tail -n 15 -- "$log" >&2
	echo "pg_rewind failed (its output above, whole in $log). PostgreSQL is stopped on this node and its data directory may be half-rewound: re-seed it with \`ha-setup recover rebuild\` (its data is moved aside, not deleted; the WAL as it was is in $keep)" >&2
	exit 1
fi
if ! { : >"$datadir/standby.signal" && chown postgres:postgres -- "$datadir/standby.signal"; }; then
	echo "rewound, but cannot write $datadir/standby.signal: PostgreSQL was left stopped; write it (owned by postgres) and start the cluster" >&2
	exit 1
fi
sh -c "$start" || {
	echo "rewound, but PostgreSQL did not start: read its log in /var/log/postgresql" >&2
	exit 1
}
echo "rewound onto the new primary's history and started as a standby"
