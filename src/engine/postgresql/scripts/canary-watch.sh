#!/bin/sh
# Waits on a standby for one canary row, by its token, and prints how long after it was
# written on the source it was here (microseconds, by the two hosts' clocks); exit 3 when
# it has not come within the time given.
# Arguments: the PostgreSQL cluster (version/name), the schema, the token, how many seconds
# to wait.
cluster=$1
schema=$2
token=$3
secs=$4
cd / || exit 1
end=$(($(date +%s) + secs))
while :; do
	r=$(runuser -u postgres -- psql --cluster "$cluster" -X -q -A -t -c "SELECT (extract(epoch FROM clock_timestamp() - written_at) * 1000000)::bigint FROM $schema.canaries WHERE token = '$token'" 2>/dev/null)
	[ -n "$r" ] && {
		echo "$r"
		exit 0
	}
	[ "$(date +%s)" -ge "$end" ] && exit 3
	sleep 0.01
done
