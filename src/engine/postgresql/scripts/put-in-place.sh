#!/bin/sh
# Puts a received copy in place of a PostgreSQL cluster's data, in one action on the host so
# that a failure once the server is stopped is undone here, connection or not: the server
# stopped, its data directory moved aside (kept, never deleted), the copy moved in, owned
# by postgres with the mode PostgreSQL demands, standby.signal written (the node starts as
# a standby, and stays fenced until ha-setup promotes it), and a record of what it holds.
# When the data directory is a mount point of its own it cannot be renamed: its entries
# move instead, into a directory inside it.
# Arguments: data directory, staging directory (the copy), where the old data goes, the
# tool's directory, the copy's manifest file name, the seed record path, the record text,
# the stop command, the start command, and `yes` when the data directory is a mount point.
# SIGHUP is ignored: a lost connection must not stop this half-way.
trap '' HUP
set -u
datadir=$1
incoming=$2
aside=$3
tool_dir=$4
manifest=$5
record_path=$6
record=$7
stop=$8
start=$9
shift 9
mounted=$1

if [ ! -s "$incoming/$manifest" ]; then
	echo "the copy in $incoming is not complete (no $manifest): PostgreSQL was not stopped; run the operation again to resend it" >&2
	exit 1
fi
sh -c "$stop" || {
	echo "PostgreSQL did not stop; nothing was changed" >&2
	exit 1
}

moved_old=
moved_new=
undo() {
	echo "putting the copy in place failed: $1" >&2
	if [ -n "$moved_new" ]; then
		if [ "$mounted" = yes ]; then
			mkdir -p -- "$incoming"
			for entry in "$datadir"/* "$datadir"/.[!.]* "$datadir"/..?*; do
				[ -e "$entry" ] || continue
				case ${entry##*/} in .ha-setup-*|lost+found) continue ;; esac
				mv -- "$entry" "$incoming/"
			done
		else
			mv -- "$datadir" "$incoming"
		fi
		echo "giving the copy to $incoming again" >&2
	fi
	if [ -n "$moved_old" ]; then
		if [ "$mounted" = yes ]; then
			for entry in "$aside"/* "$aside"/.[!.]* "$aside"/..?*; do
				[ -e "$entry" ] || continue
				mv -- "$entry" "$datadir/"
			done
			rmdir -- "$aside"
		else
			mv -- "$aside" "$datadir"
		fi
	fi
	if sh -c "$start"; then
		echo "The old data is back in $datadir and PostgreSQL runs on it again, as before." >&2
	else
		echo "The old data is back in $datadir, but PostgreSQL did not start on it: start it by hand and read its log." >&2
	fi
	exit 1
}

if [ "$mounted" = yes ]; then
	mkdir -m 0700 -- "$aside" || undo "cannot make $aside"
	moved_old=yes
	for entry in "$datadir"/* "$datadir"/.[!.]* "$datadir"/..?*; do
		[ -e "$entry" ] || continue
		case ${entry##*/} in .ha-setup-*|lost+found) continue ;; esac
		mv -- "$entry" "$aside/" || undo "cannot move $entry into $aside"
	done
	moved_new=yes
	for entry in "$incoming"/* "$incoming"/.[!.]* "$incoming"/..?*; do
		[ -e "$entry" ] || continue
		mv -- "$entry" "$datadir/" || undo "cannot move $entry into $datadir"
	done
	rmdir -- "$incoming" || undo "cannot remove the empty $incoming"
else
	if [ -e "$datadir" ]; then
		mv -- "$datadir" "$aside" || undo "cannot move $datadir to $aside"
		moved_old=yes
	fi
	mv -- "$incoming" "$datadir" || undo "cannot move $incoming to $datadir"
	moved_new=yes
fi
mkdir -p -- "$tool_dir" || undo "cannot make $tool_dir"
mv -- "$datadir/$manifest" "$tool_dir/postgresql-seed-manifest.toml" || undo "cannot keep the copy's manifest"
: >"$datadir/standby.signal" || undo "cannot write standby.signal"
chown -R postgres:postgres -- "$datadir" || undo "cannot give $datadir to postgres"
chmod 0700 -- "$datadir" || undo "cannot set the mode of $datadir"
printf '%s\n' "$record" >"$record_path.tmp" || undo "cannot write $record_path.tmp"
mv -- "$record_path.tmp" "$record_path" || undo "cannot write $record_path"
sync
if [ -n "$moved_old" ]; then
	echo "the old data is in $aside (kept, not deleted)"
fi
echo "the copy is in $datadir"
