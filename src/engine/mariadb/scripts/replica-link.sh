#!/bin/sh
# Reads what a replica keeps of its link that SQL does not show: whether the replication
# password it reconnects with (master.info in its datadir, where MariaDB keeps it) is the
# one on stdin, compared here so the password is on no command line and in no SQL; and
# its slave_net_timeout (how long a silent source counts as alive).
# Input: the password. Output: password=same|differs|unknown, net_timeout=SECONDS.
set -e
row=$(mariadb --batch --skip-column-names --connect-timeout=10 \
	-e 'SELECT @@datadir, @@global.slave_net_timeout')
datadir=$(printf '%s\n' "$row" | cut -f1)
printf 'net_timeout=%s\n' "$(printf '%s\n' "$row" | cut -f2)"
wanted=$(cat)
info=${datadir%/}/master.info
if [ ! -r "$info" ]; then
	echo password=unknown
elif [ "$(sed -n 6p "$info")" = "$wanted" ]; then
	echo password=same
else
	echo password=differs
fi
