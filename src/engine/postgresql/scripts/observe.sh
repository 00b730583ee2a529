#!/bin/sh
# Reads one PostgreSQL node in one round trip: which of Debian's clusters is the one (the
# config's port, else the only one, else the one on 5432), where it keeps its data and
# settings, whether ha-setup set it up (its settings file in conf.d) and placed its data
# (the seed record), whether its data directory holds standby.signal (every node does
# while ha-setup keeps it: the fence), and what the server answers.
# Arguments: the port to look for (empty: any), ha-setup's settings file name, the seed
# record, the SQL to run (one row of JSON).
# Output: key=value lines, then `--- answered` and the JSON row, or `--- failed` and why.
want_port=$1
conf_name=$2
seed=$3
sql=$4

systemd=no
[ -d /run/systemd/system ] && systemd=yes
printf 'systemd=%s\n' "$systemd"
if ! command -v pg_lsclusters >/dev/null 2>&1; then
	echo '--- failed'
	echo 'PostgreSQL is not installed (no pg_lsclusters: apt-get install postgresql)'
	exit 0
fi
clusters=$(pg_lsclusters --no-header 2>/dev/null)
printf 'clusters=%s\n' "$(printf '%s\n' "$clusters" | awk 'NF { printf "%s%s/%s:%s", sep, $1, $2, $3; sep = "," }')"
line=
if [ -n "$want_port" ]; then
	line=$(printf '%s\n' "$clusters" | awk -v p="$want_port" '$3 == p' | head -n 1)
elif [ "$(printf '%s\n' "$clusters" | grep -c .)" = 1 ]; then
	line=$clusters
else
	line=$(printf '%s\n' "$clusters" | awk '$3 == 5432' | head -n 1)
fi
if [ -z "$line" ]; then
	echo '--- failed'
	echo 'no-cluster'
	exit 0
fi
# Ver Cluster Port Status Owner Data-directory Log-file: words, split on purpose.
# shellcheck disable=SC2086
set -- $line
version=$1
name=$2
port=$3
status=$4
datadir=$6
log=${7:-}
confdir=/etc/postgresql/$version/$name
printf 'version=%s\nname=%s\nport=%s\nstatus=%s\ndatadir=%s\nconfdir=%s\nlog=%s\n' \
	"$version" "$name" "$port" "$status" "$datadir" "$confdir" "$log"
if grep -Eq "^[[:space:]]*include_dir[[:space:]]*=?[[:space:]]*'conf\.d'" "$confdir/postgresql.conf" 2>/dev/null; then
	echo include_dir=yes
else
	echo include_dir=no
fi
if [ -e "$confdir/conf.d/$conf_name" ]; then echo member=yes; else echo member=no; fi
if [ -s "$seed" ]; then echo seeded=yes; else echo seeded=no; fi
if [ -e "$datadir/standby.signal" ]; then echo signal=yes; else echo signal=no; fi
# The data directory's own mount: a datadir that is a mount point cannot be renamed.
if [ -d "$datadir" ] && [ "$(stat -c %d -- "$datadir")" != "$(stat -c %d -- "$(dirname -- "$datadir")")" ]; then
	echo datadir_mount=yes
else
	echo datadir_mount=no
fi
case $status in
online*)
	if out=$(cd / && printf '%s\n' "$sql" | runuser -u postgres -- psql --cluster "$version/$name" -X -q -A -t -v ON_ERROR_STOP=1 2>&1); then
		# Not streaming: the server log's last word on why (PostgreSQL keeps no
		# receiver error in SQL).
		case $out in
		*'"receiving":false'*)
			if [ -r "$log" ]; then
				tail -n 400 -- "$log" | grep -E 'could not connect to the primary|could not receive data from WAL stream|replication terminated|timeline|could not start WAL streaming|password authentication failed|no pg_hba.conf entry|replication slot' | tail -n 1 | sed 's/^/receiver_error=/'
			fi
			;;
		esac
		echo '--- answered'
		printf '%s\n' "$out"
	else
		echo '--- failed'
		printf '%s\n' "$out"
	fi
	;;
*)
	echo '--- failed'
	echo 'down'
	;;
esac
