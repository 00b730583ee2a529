#!/bin/sh
# Waits on a replica for one canary row, by its token, and prints how long after it was
# written on the source it was here (microseconds, by the two hosts' clocks); exit 3 when
# it has not come within the time given.
# Arguments: the schema, the token, how many seconds to wait.
schema=$1
token=$2
secs=$3
end=$(($(date +%s) + secs))
while :; do
	r=$(mariadb -N -B -e "SELECT TIMESTAMPDIFF(MICROSECOND, written_at, NOW(6)) FROM $schema.canaries WHERE token = '$token'" 2>/dev/null)
	[ -n "$r" ] && {
		echo "$r"
		exit 0
	}
	[ "$(date +%s)" -ge "$end" ] && exit 3
	sleep 0.01
done
