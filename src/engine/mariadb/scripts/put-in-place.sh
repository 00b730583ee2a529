#!/bin/sh
# Puts a prepared copy in place of a MariaDB datadir without leaving the datadir's
# filesystem: stops MariaDB, moves every entry of the datadir into the moved-aside
# directory (kept, never deleted), moves every entry of the copy into the datadir, gives
# them to the server's user, and writes the seed record. Only entries move (renames on one
# filesystem: no copying, no room needed), so the datadir may be a mount point of its own.
#
# Anything that fails after the stop is undone: the copy goes back to the staging
# directory, the old data back into the datadir, and MariaDB is started again if it ran.
# The last lines on stderr say how the node was left.
#
# Arguments: the datadir, the staging directory holding the copy, the directory for the old
# data (both inside the datadir), ha-setup's directory for the copy's manifest, the
# manifest's name in the copy, the seed record's path, its text, the owner (user:group),
# the command that stops MariaDB and waits, the command that starts it and waits.
datadir=$1
incoming=$2
aside=$3
tool_dir=$4
manifest=$5
record=$6
record_text=$7
owner=$8
stop=$9
shift 9
start=$1

# Finish, or undo, even when the connection from the operator's machine drops meanwhile.
trap '' HUP PIPE

say() { printf '%s\n' "$*" >&2; }
first_line() { printf '%s\n' "$1" | sed -n '1p'; }
exists() { [ -e "$1" ] || [ -L "$1" ]; }
nl='
'

# Before anything stops: the copy is complete, and the copy, the datadir and the place for
# the old data share one filesystem.
refuse() {
	say "$1"
	say "Nothing was changed: MariaDB was not stopped and its data is where it was."
	exit 1
}
[ -f "$incoming/$manifest" ] ||
	refuse "the copy in $incoming is not complete (no $manifest); run the operation again to resend it."
mkdir -p -- "$datadir" || refuse "cannot make the datadir $datadir."
device=$(stat -L -c %d -- "$datadir")
[ "$(stat -L -c %d -- "$incoming")" = "$device" ] ||
	refuse "$incoming is on another filesystem than the datadir $datadir (something is mounted there?); the copy must be on the datadir's own filesystem. Unmount it and run the operation again."
old_root=${aside%/*}
err=$({ [ -d "$old_root" ] || mkdir -m 0700 -- "$old_root"; } 2>&1 && mkdir -m 0700 -- "$aside" 2>&1) ||
	refuse "cannot make $aside for the old data: $(first_line "$err")"
[ "$(stat -c %d -- "$aside")" = "$device" ] ||
	{
		rmdir -- "$aside"
		refuse "$old_root is on another filesystem than the datadir $datadir; the old data must stay on the datadir's own filesystem. Unmount it and run the operation again."
	}

# The entries of a directory, one per line (MariaDB's file names have no newlines).
entries() {
	for entry in "$1"/* "$1"/.[!.]* "$1"/..?*; do
		exists "$entry" && printf '%s\n' "${entry##*/}"
	done
}
# What stays in the datadir: ha-setup's own directories, and a filesystem's lost+found.
staging_name=${incoming##*/}
old_name=${old_root##*/}
kept() {
	case $1 in "$staging_name" | "$old_name" | lost+found | '') return 0 ;; esac
	return 1
}

running=no
if mariadb-admin --connect-timeout=5 ping >/dev/null 2>&1; then running=yes; fi
if ! err=$(sh -c "$stop" 2>&1); then
	rmdir -- "$aside" "$old_root" 2>/dev/null
	if mariadb-admin --connect-timeout=5 ping >/dev/null 2>&1; then
		say "stopping MariaDB failed: $(first_line "$err")"
		say "Nothing was moved; MariaDB still runs on its own data."
	else
		say "stopping MariaDB failed: $(first_line "$err")"
		say "Nothing was moved, but MariaDB does not answer now: start it again (its service) and look at its error log."
	fi
	exit 1
fi

failure=
moved_in=
manifest_moved=no

# The old data aside.
while IFS= read -r name; do
	kept "$name" && continue
	if ! err=$(mv -T -- "$datadir/$name" "$aside/$name" 2>&1); then
		failure="moving the old data aside failed: $(first_line "$err")"
		break
	fi
done <<EOF
$(entries "$datadir")
EOF

# The copy in.
if [ -z "$failure" ]; then
	while IFS= read -r name; do
		case $name in "$manifest" | lost+found | '') continue ;; esac
		if exists "$datadir/$name"; then
			failure="putting the copy in place failed: $datadir/$name is in the way"
			break
		fi
		if ! err=$(mv -T -- "$incoming/$name" "$datadir/$name" 2>&1); then
			failure="putting the copy in place failed: $(first_line "$err")"
			break
		fi
		moved_in="$moved_in$name$nl"
	done <<EOF
$(entries "$incoming")
EOF
fi

# Owned by the server's user: the datadir itself and the copy, not the old data.
if [ -z "$failure" ]; then
	if ! err=$(chown -- "$owner" "$datadir" 2>&1); then
		failure="giving the copy to $owner failed: $(first_line "$err")"
	fi
fi
if [ -z "$failure" ]; then
	while IFS= read -r name; do
		[ -n "$name" ] || continue
		if ! err=$(chown -R -- "$owner" "$datadir/$name" 2>&1); then
			failure="giving the copy to $owner failed: $(first_line "$err")"
			break
		fi
	done <<EOF
$moved_in
EOF
fi

# What the node now holds. The renames reach the disk before the record says they happened.
if [ -z "$failure" ]; then
	if ! err=$(mkdir -p -- "$tool_dir" 2>&1 && mv -f -- "$incoming/$manifest" "$tool_dir/seed-manifest.toml" 2>&1); then
		failure="keeping the copy's manifest in $tool_dir failed: $(first_line "$err")"
	else
		manifest_moved=yes
		if ! err=$(sync -f -- "$datadir" 2>&1 &&
			printf '%s\n' "$record_text" >"$record.tmp" 2>&1 &&
			sync -- "$record.tmp" 2>&1 &&
			mv -f -- "$record.tmp" "$record" 2>&1); then
			rm -f -- "$record.tmp"
			failure="writing the seed record $record failed: $(first_line "$err")"
		else
			sync -- "${record%/*}" 2>/dev/null
		fi
	fi
fi

if [ -z "$failure" ]; then
	# Only the copy's leftovers (its lost+found, if it had one) remain in the staging directory.
	rm -rf -- "$incoming"
	echo "the old data is in $aside (kept, not deleted); the copy is in $datadir"
	exit 0
fi

# Undo, in reverse: the manifest, the copy, the old data. (The record is written last, so
# it was not.)
say "$failure"
undo=
if [ $manifest_moved = yes ]; then
	err=$(mv -f -- "$tool_dir/seed-manifest.toml" "$incoming/$manifest" 2>&1) || undo=${undo:-$err}
fi
while IFS= read -r name; do
	[ -n "$name" ] || continue
	err=$(mv -T -- "$datadir/$name" "$incoming/$name" 2>&1) || undo=${undo:-$err}
done <<EOF
$moved_in
EOF
while IFS= read -r name; do
	[ -n "$name" ] || continue
	if exists "$datadir/$name"; then
		undo=${undo:-"$datadir/$name is in the way of the old data"}
		continue
	fi
	err=$(mv -T -- "$aside/$name" "$datadir/$name" 2>&1) || undo=${undo:-$err}
done <<EOF
$(entries "$aside")
EOF
if [ -n "$undo" ]; then
	say "Putting the old data back failed too: $(first_line "$undo")"
	say "MariaDB is stopped. The old data is in $aside (move its entries back into $datadir);"
	say "the entries of the copy are in $datadir or $incoming. Nothing was deleted."
	exit 1
fi
rmdir -- "$aside" 2>/dev/null
rmdir -- "$old_root" 2>/dev/null
if [ $running = no ]; then
	say "The old data is back in $datadir as it was, and MariaDB is left stopped, as it was before; the copy waits in $incoming."
	exit 1
fi
if ! err=$(sh -c "$start" 2>&1); then
	say "The old data is back in $datadir as it was, but MariaDB did not start again: $(first_line "$err")"
	say "Start it (its service) and look at its error log; the copy waits in $incoming."
	exit 1
fi
say "The old data is back in $datadir and MariaDB runs on it again, as before; the copy waits in $incoming."
say "Fix the cause and run the same command again: it carries on from there."
exit 1
