#!/bin/sh
# Reads one MariaDB node in one round trip: whether ha-setup set it up (its settings file),
# whether it holds a copy ha-setup placed (the seed record), and what the server answers.
# Arguments: the settings file, the seed record, the SQL to run.
# Output: member=yes|no, seeded=yes|no, then `--- answered` and the client's batch output,
# or `--- failed` and the client's error.
cnf=$1
seed=$2
sql=$3
if [ -e "$cnf" ]; then echo member=yes; else echo member=no; fi
if [ -s "$seed" ]; then echo seeded=yes; else echo seeded=no; fi
if out=$(printf '%s\n' "$sql" | mariadb --batch --connect-timeout=5 2>&1); then
	echo '--- answered'
else
	echo '--- failed'
fi
printf '%s\n' "$out"
