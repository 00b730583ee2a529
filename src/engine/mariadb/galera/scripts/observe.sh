# shellcheck shell=sh
# Galera (appended to the MariaDB node's reading, same round trip): what a node shows
# when its server does not answer too, since after a crash each node's position is in its
# grastate.dat; the Galera library found on the host; whether mariadbd runs at all (a
# joiner during its state transfer does not answer yet); the arbitrator's garbd and its
# settings; and ha-setup's record of the cluster.
# Arguments beyond the MariaDB reading's: $6 the config's datadir (empty: the one the
# server's option files name), $7 ha-setup's cluster record.
galera_datadir=$6
galera_record=$7
if [ -z "$galera_datadir" ]; then
	galera_datadir=$(my_print_defaults --mysqld 2>/dev/null | sed -n 's/^--datadir=//p' | tail -n 1)
fi
if [ -z "$galera_datadir" ] && command -v mariadbd >/dev/null 2>&1; then
	galera_datadir=$(mariadbd --verbose --help 2>/dev/null | awk '$1 == "datadir" { print $2; exit }')
fi
galera_datadir=${galera_datadir%/}
echo '--- galera'
printf 'datadir=%s\n' "$galera_datadir"
if [ -n "$galera_datadir" ] && [ -r "$galera_datadir/grastate.dat" ]; then
	sed -n 's/^\(uuid\|seqno\|safe_to_bootstrap\):[[:space:]]*\(.*\)$/grastate_\1=\2/p' "$galera_datadir/grastate.dat"
fi
if [ -n "$galera_datadir" ] && [ -e "$galera_datadir/sst_in_progress" ]; then
	echo 'sst_in_progress=yes'
fi
for provider in /usr/lib/galera/libgalera_smm.so /usr/lib/galera-4/libgalera_smm.so \
	/usr/lib64/galera-4/libgalera_smm.so /usr/lib64/galera/libgalera_smm.so; do
	if [ -e "$provider" ]; then
		printf 'provider=%s\n' "$provider"
		break
	fi
done
printf 'mariadbd_pid=%s\n' "$(pgrep -x mariadbd 2>/dev/null | head -n 1)"
printf 'garbd_pid=%s\n' "$(pgrep -x garbd 2>/dev/null | head -n 1)"
if [ -r /etc/default/garb ]; then
	# Sourced as its own service script does, in a subshell.
	(
		# shellcheck disable=SC1091
		. /etc/default/garb >/dev/null 2>&1
		printf 'garb_group=%s\ngarb_nodes=%s\n' "${GALERA_GROUP:-}" "${GALERA_NODES:-}"
	)
fi
if [ -s "$galera_record" ]; then
	printf 'record=%s\n' "$(tr -d '\n' <"$galera_record")"
fi
