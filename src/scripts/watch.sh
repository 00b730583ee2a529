#!/bin/sh
# Runs a query command every 10 ms until it prints something (a canary row that arrived),
# prints that and exits 0; exits 3 when nothing came within the time given. One loop on
# the host rather than one SSH command per poll: a login per poll would cost more than the
# replication delay it measures.
# Arguments: how many seconds to wait, then the command and its arguments.
secs=$1
shift
cd / || exit 1
end=$(($(date +%s) + secs))
while :; do
	r=$("$@" 2>/dev/null)
	[ -n "$r" ] && {
		echo "$r"
		exit 0
	}
	[ "$(date +%s)" -ge "$end" ] && exit 3
	sleep 0.01
done
