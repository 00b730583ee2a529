#!/bin/sh
# Reads one MariaDB node in one round trip: where MariaDB takes its settings from and which
# service runs it (found on the host, unless the config says), whether ha-setup set it up
# (its settings file there), whether it holds a copy ha-setup placed (the seed record), and
# what the server answers; when it does not answer, the datadir its settings name.
# Arguments: the config's config_dir and service (each empty: find it on the host), the
# name of ha-setup's settings file, the seed record, the SQL to run.
# Output: key=value lines (config_dir, config_dir_from, service, service_from, systemd,
# member, seeded, datadir_configured when the server does not answer, on a replica
# heartbeat and received_ago, and on a replica stopped on a row that differs between the
# nodes stuck_gtid, stuck_change, stuck_table and stuck_key), then
# `--- answered` and the client's batch output, or `--- failed` and the client's error.
config_dir=$1
service=$2
cnf_name=$3
seed=$4
sql=$5

# The settings directory: the last `!includedir` in the option files MariaDB reads, taken
# in the order it reads them, so a file put there is read after the distribution's own
# (Debian: /etc/mysql/my.cnf names conf.d/, then mariadb.conf.d/; RHEL: /etc/my.cnf.d).
config_dir_from=config
if [ -z "$config_dir" ]; then
	config_dir_from=
	files=$(my_print_defaults --help 2>/dev/null | sed -n '/^Default options are read/{n;p;q;}')
	[ -n "$files" ] || files='/etc/my.cnf /etc/mysql/my.cnf'
	# The list is words, split on purpose.
	# shellcheck disable=SC2086
	for file in $files; do
		case $file in '~'*) continue ;; esac
		[ -r "$file" ] || continue
		dir=$(sed -n 's/^[[:space:]]*!includedir[[:space:]]*//p' "$file" | sed 's/[[:space:]]*$//' | tail -n 1)
		if [ -n "$dir" ]; then
			config_dir=${dir%/}
			config_dir_from=$file
		fi
	done
fi

# The service: a systemd unit when systemd runs, else an init script; MariaDB's own name
# first, then the names older packages and other distributions use.
systemd=no
[ -d /run/systemd/system ] && systemd=yes
service_from=config
if [ -z "$service" ]; then
	service_from=
	for name in mariadb mysql mysqld; do
		if [ $systemd = yes ]; then
			[ "$(systemctl show -p LoadState --value "$name.service" 2>/dev/null)" = loaded ] || continue
			unit=$(systemctl show -p Id --value "$name.service" 2>/dev/null)
			service=${unit%.service}
			service_from="systemd unit $unit"
		else
			[ -x "/etc/init.d/$name" ] || continue
			service=$name
			service_from=/etc/init.d/$name
		fi
		break
	done
fi

# A replica whose applier stopped on a row that differs between the nodes (a duplicate
# key, a missing row, a foreign key): the transaction and the row it stopped at, read from
# its relay log where the applier stands. Only the row's primary key is printed: the rest
# of a row may be anything the application keeps. Arguments: the relay log's base name.
stuck_row() {
	fields=$(printf '%s\n' "$out" | awk -F '\t' '
		!seen && /(^|\t)Slave_IO_Running(\t|$)/ {
			for (i = 1; i <= NF; i++) col[$i] = i
			seen = 1
			if ((getline row) > 0) {
				split(row, v, "\t")
				print v[col["Last_SQL_Errno"]] "\t" v[col["Relay_Log_Pos"]] "\t" v[col["Relay_Log_File"]]
			}
		}')
	errno=$(printf '%s\n' "$fields" | cut -f1)
	pos=$(printf '%s\n' "$fields" | cut -f2)
	file=$(printf '%s\n' "$fields" | cut -f3)
	case $errno in 1022 | 1032 | 1062 | 1451 | 1452) ;; *) return 0 ;; esac
	case $pos in '' | *[!0-9]*) return 0 ;; esac
	events=$(mariadb-binlog --base64-output=decode-rows --verbose --start-position="$pos" \
		-- "${1%/*}/${file##*/}" 2>/dev/null | head -n 400)
	gtid=$(printf '%s\n' "$events" | sed -n 's/.*[[:space:]]GTID \([0-9]*-[0-9]*-[0-9]*\).*/\1/p' | head -n 1)
	[ -n "$gtid" ] && printf 'stuck_gtid=%s\n' "$gtid"
	# The first row change: its statement line, then the row image that identifies the row
	# (an update's or a delete's WHERE image, an insert's SET image).
	image=$(printf '%s\n' "$events" | awk '
		!found && /^### (INSERT INTO|UPDATE|DELETE FROM) / { found = 1; print; next }
		found && /^### (SET|WHERE)$/ { if (marker++) exit; next }
		found && /^###   @[0-9]+=/ { print; next }
		found { exit }')
	head_line=$(printf '%s\n' "$image" | sed -n 1p)
	[ -n "$head_line" ] || return 0
	change=$(printf '%s\n' "$head_line" | sed -n 's/^### \(INSERT INTO\|UPDATE\|DELETE FROM\) .*/\1/p')
	name=${head_line#"### $change "}
	# The backquotes are MariaDB's, not the shell's.
	# shellcheck disable=SC2016
	schema=$(printf '%s\n' "$name" | sed -n 's/^`\(.*\)`\.`.*`$/\1/p')
	# shellcheck disable=SC2016
	table=$(printf '%s\n' "$name" | sed -n 's/^`.*`\.`\(.*\)`$/\1/p')
	printf 'stuck_change=%s\nstuck_table=%s.%s\n' "$change" "$schema" "$table"
	# As SQL literals: quotes doubled, backslashes too (harmless if the session reads them
	# literally).
	lit() { printf '%s' "$1" | sed "s/\\\\/\\\\\\\\/g; s/'/''/g"; }
	keys=$(mariadb --batch --skip-column-names --connect-timeout=5 -e "SELECT c.ORDINAL_POSITION, c.COLUMN_NAME \
		FROM information_schema.STATISTICS s JOIN information_schema.COLUMNS c \
		ON c.TABLE_SCHEMA = s.TABLE_SCHEMA AND c.TABLE_NAME = s.TABLE_NAME AND c.COLUMN_NAME = s.COLUMN_NAME \
		WHERE s.TABLE_SCHEMA = '$(lit "$schema")' AND s.TABLE_NAME = '$(lit "$table")' AND s.INDEX_NAME = 'PRIMARY' \
		ORDER BY s.SEQ_IN_INDEX" 2>/dev/null) || return 0
	key=$(printf '%s\n' "$keys" | while IFS="$(printf '\t')" read -r ordinal column; do
		[ -n "$ordinal" ] || continue
		value=$(printf '%s\n' "$image" | sed -n "s/^###   @$ordinal=//p" | head -n 1 | cut -c1-100)
		printf '%s=%s, ' "$column" "$value"
	done)
	[ -n "$key" ] && printf 'stuck_key=%s\n' "${key%, }"
	return 0
}

printf 'config_dir=%s\nconfig_dir_from=%s\n' "$config_dir" "$config_dir_from"
printf 'service=%s\nservice_from=%s\nsystemd=%s\n' "$service" "$service_from" "$systemd"
if [ -n "$config_dir" ] && [ -e "$config_dir/$cnf_name" ]; then echo member=yes; else echo member=no; fi
if [ -s "$seed" ]; then echo seeded=yes; else echo seeded=no; fi
if out=$(printf '%s\n' "$sql" | mariadb --batch --connect-timeout=5 2>&1); then
	# A replica is a witness of whether its source lives (`recover promote`): how long ago
	# changes last arrived (its newest relay log's age; heartbeats are not written there),
	# and how often an idle source sends a heartbeat.
	case $out in
	*Slave_IO_Running*)
		witness=$(mariadb --batch --skip-column-names --connect-timeout=5 -e \
			"SELECT @@relay_log_basename, VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SLAVE_HEARTBEAT_PERIOD'" 2>/dev/null) || witness=
		relay=$(printf '%s\n' "$witness" | cut -f1)
		printf 'heartbeat=%s\n' "$(printf '%s\n' "$witness" | cut -f2)"
		newest=$(stat -c %Y -- "$relay".[0-9]* 2>/dev/null | sort -n | tail -n 1)
		if [ -n "$relay" ] && [ -n "$newest" ]; then
			printf 'received_ago=%s\n' "$(($(date +%s) - newest))"
		fi
		[ -n "$relay" ] && stuck_row "$relay"
		;;
	esac
	echo '--- answered'
else
	# Not running: the datadir it would start with (its option files, else the built-in
	# default), as the server itself works it out.
	server=$(command -v mariadbd || command -v mysqld || echo /usr/sbin/mariadbd)
	datadir=$("$server" --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')
	printf 'datadir_configured=%s\n' "$datadir"
	echo '--- failed'
fi
printf '%s\n' "$out"
