#!/bin/sh
# Starts MariaDB as a Galera node and waits until it is Synced in the primary component,
# as one action on the host (it goes on when the operator's connection drops):
#   bootstrap  the first node: stopped, then started with --wsrep-new-cluster on its data;
#   join       a node joining: stopped, its data moved aside (kept, never deleted) unless
#              it holds the cluster's data already, then started: it gets the cluster's
#              data by a state transfer (SST) or, when it can, only what it missed (IST);
#   restart    a member restarted to take new settings.
# ha-setup's settings file waits beside its place (not read by MariaDB: it does not end in
# .cnf) and goes in place only once the server is stopped and its old data aside, so that
# no restart by anyone else turns a node with data of its own into a joiner.
#
# Arguments: the mode, the datadir, ha-setup's settings file, the waiting new version of it
# (may be absent: the settings stay as they are), the directory for the old data (empty:
# nothing is moved), the service, how many seconds the server may take to be Synced, the
# node's name (for messages).
mode=$1
datadir=$2
cnf=$3
pending=$4
aside=$5
service=$6
limit=$7
node=$8

trap '' HUP PIPE
say() { printf '%s\n' "$*" >&2; }
first_line() { printf '%s\n' "$1" | sed -n '1p'; }
exists() { [ -e "$1" ] || [ -L "$1" ]; }
answers() { mariadb-admin --connect-timeout=2 ping >/dev/null 2>&1; }
alive() { pgrep -x mariadbd >/dev/null 2>&1; }
status() {
	mariadb --batch --skip-column-names --connect-timeout=2 -e \
		"SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN ('WSREP_LOCAL_STATE_COMMENT', 'WSREP_CLUSTER_STATUS')" 2>/dev/null |
		awk '{ v[$1] = $2 } END { print v["WSREP_LOCAL_STATE_COMMENT"] "/" v["WSREP_CLUSTER_STATUS"] }'
}
control() {
	if [ -d /run/systemd/system ]; then
		case $1 in
		bootstrap) galera_new_cluster "$service.service" ;;
		*) systemctl "$1" "$service" ;;
		esac
	else
		service "$service" "$1" </dev/null
	fi
}
logs="MariaDB's error log on $node (journalctl -u $service, or the log_error file, or syslog) and the state transfer's own logs, $datadir/mariabackup.*.log on $node and on its donor"

# The pieces of a state transfer that outlived their server (the SST script, socat,
# mbstream, mariabackup, their loggers): with no mariadbd on the host, no transfer runs,
# so they are left over from one that failed. Ended, so that none holds the SST port or
# writes into the datadir while the server starts again. Prints what it ended.
end_leftovers() {
	alive && return 0
	pids=$(pgrep -u mysql -f 'wsrep_sst_|wsrep-sst-|socat|mbstream|mariabackup' | tr '\n' ' ')
	[ -n "$pids" ] || return 0
	ps -o pid=,args= -p "$(printf '%s' "$pids" | tr -s ' ' ',' | sed 's/,$//')" 2>/dev/null |
		cut -c1-120 | sed 's/^ */  /'
	# shellcheck disable=SC2086 # a list of PIDs
	kill -TERM $pids 2>/dev/null
	i=0
	# shellcheck disable=SC2086
	while kill -0 $pids 2>/dev/null && [ $i -lt 20 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	# shellcheck disable=SC2086
	kill -KILL $pids 2>/dev/null
	return 0
}

# Asks the service to stop and waits up to 60 s for mariadbd to be gone; what the service
# said goes to $stop_said.
stop_and_wait() {
	stop_said=$(control stop 2>&1)
	i=0
	while alive && [ $i -lt 120 ]; do
		sleep 0.5
		i=$((i + 1))
	done
	! alive
}

# Stops the server so that it stays stopped: mysqld_safe starts a server that aborted
# again a moment later (a joiner whose transfer failed tries again and again), and the
# init script's stop does nothing while it is between two starts. A few rounds, each
# bounded.
stop_for_good() {
	round=0
	while [ $round -lt 5 ]; do
		stop_and_wait || return 1
		sleep 3
		alive || return 0
		round=$((round + 1))
	done
	return 1
}

refuse() {
	say "$1"
	say "Nothing was changed on $node: MariaDB was not stopped and its data is where it was."
	exit 1
}

# Before anything stops: room for the old data on the data's own filesystem.
[ -d "$datadir" ] || refuse "the datadir $datadir does not exist."
if [ -n "$aside" ]; then
	device=$(stat -L -c %d -- "$datadir")
	old_root=${aside%/*}
	err=$({ [ -d "$old_root" ] || mkdir -m 0700 -- "$old_root"; } 2>&1 && mkdir -m 0700 -- "$aside" 2>&1) ||
		refuse "cannot make $aside for the old data: $(first_line "$err")"
	if [ "$(stat -c %d -- "$aside")" != "$device" ]; then
		rmdir -- "$aside"
		refuse "$old_root is on another filesystem than the datadir $datadir; the old data must stay on the datadir's own filesystem."
	fi
fi

was_running=no
if answers; then was_running=yes; fi

# Stopped, and gone: a joiner stuck in an earlier state transfer does not answer but runs.
if answers || alive; then
	if ! stop_for_good; then
		[ -n "$aside" ] && rmdir -- "$aside" 2>/dev/null
		say "stopping MariaDB on $node failed: $(first_line "$stop_said") (mariadbd still runs, or runs again, 60 seconds later)"
		say "Nothing was moved; look at the server there."
		exit 1
	fi
fi

ended=$(end_leftovers)
[ -n "$ended" ] && say "left over from an earlier state transfer on $node, ended:
$ended"

# The old data aside: every entry of the datadir but ha-setup's own directories and a
# filesystem's lost+found.
moved=
failure=
if [ -n "$aside" ]; then
	for entry in "$datadir"/* "$datadir"/.[!.]* "$datadir"/..?*; do
		exists "$entry" || continue
		name=${entry##*/}
		case $name in .ha-setup-old | .ha-setup-incoming | lost+found) continue ;; esac
		if ! err=$(mv -T -- "$entry" "$aside/$name" 2>&1); then
			failure="moving the old data aside failed: $(first_line "$err")"
			break
		fi
		moved="$moved$name
"
	done
fi
put_back() {
	printf '%s' "$moved" | while IFS= read -r name; do
		[ -n "$name" ] && mv -T -- "$aside/$name" "$datadir/$name"
	done
	rmdir -- "$aside" 2>/dev/null
	rmdir -- "$old_root" 2>/dev/null
}

# The settings in place, the old file kept when it differs.
backup=
placed=no
if [ -z "$failure" ] && [ -e "$pending" ]; then
	if [ -e "$cnf" ] && ! cmp -s -- "$cnf" "$pending"; then
		backup="$cnf.ha-setup-bak-$(date -u +%Y%m%dT%H%M%SZ)"
		err=$(cp -p -- "$cnf" "$backup" 2>&1) || failure="keeping $cnf as $backup failed: $(first_line "$err")"
	fi
	if [ -z "$failure" ]; then
		if err=$(mv -f -- "$pending" "$cnf" 2>&1); then
			placed=yes
		else
			failure="putting $cnf in place failed: $(first_line "$err")"
		fi
	fi
fi
if [ -n "$failure" ]; then
	say "$failure"
	[ -n "$aside" ] && put_back
	if [ $was_running = yes ]; then
		control start >/dev/null 2>&1
		say "The data is back in $datadir and MariaDB was started again as it was; nothing else changed."
	else
		say "The data is back in $datadir; MariaDB is left stopped, as it was."
	fi
	exit 1
fi

started=$(date +%s)
case $mode in
bootstrap) control bootstrap >/dev/null 2>&1 ;;
*) control start >/dev/null 2>&1 ;;
esac

# Synced in the primary component, or the server gone (a failed state transfer ends it).
end=$((started + limit))
gone=0
state=
while [ "$(date +%s)" -lt "$end" ]; do
	state=$(status)
	case $state in Synced/Primary) break ;; esac
	if alive; then gone=0; else gone=$((gone + 1)); fi
	# The service manager may take a moment to run mariadbd at all.
	[ $gone -ge 20 ] && break
	sleep 0.5
done
took=$(($(date +%s) - started))

if [ "$state" = Synced/Primary ]; then
	case $mode in
	bootstrap) echo "$node bootstrapped the cluster from its data and is Synced (in $took s)" ;;
	join) echo "$node joined and is Synced (in $took s)" ;;
	*) echo "$node restarted with its new settings and is Synced again (in $took s)" ;;
	esac
	[ -n "$aside" ] && echo "$node's old data is in $aside (kept, not deleted)"
	[ -n "$backup" ] && echo "$node's previous settings are in $backup"
	exit 0
fi

if alive; then
	why="it runs but is not Synced after $took seconds (${state:-no answer})"
else
	why="mariadbd stopped ${state:+($state) }$took seconds after the start"
fi
case $mode in
bootstrap)
	say "bootstrapping the cluster on $node failed: $why; see $logs."
	if [ $placed = yes ]; then
		# The first node goes back to what it ran before: its data is the cluster's.
		stop_and_wait
		mv -f -- "$cnf" "$pending" 2>/dev/null
		[ -n "$backup" ] && mv -f -- "$backup" "$cnf" 2>/dev/null
		if [ $was_running = yes ] && control start >/dev/null 2>&1; then
			say "$node runs again as before, without Galera; its data was not touched."
		else
			say "$node is stopped, without Galera's settings; its data was not touched. Start it with: service $service start"
		fi
	else
		say "Its data was not touched."
	fi
	;;
restart)
	say "$node did not come back Synced: $why."
	say "Look at $logs. Fix the cause and run the same ha-setup command again."
	;;
*)
	say "$node did not join the cluster: $why."
	# mysqld_safe and systemd start a server that aborted again, and a joiner whose
	# transfer failed would try again and again on its own: stopped, so that it stays as
	# this says until the cause is fixed.
	stop_for_good
	end_leftovers >/dev/null
	if alive; then
		say "MariaDB on $node could not be stopped (it may be retrying the state transfer); look at it there."
	else
		say "MariaDB on $node is stopped (it would otherwise retry the transfer by itself)."
	fi
	[ -n "$aside" ] && say "Its old data is kept in $aside (not deleted)."
	say "Look at $logs. Fix the cause and run the same ha-setup command again."
	;;
esac
exit 1
