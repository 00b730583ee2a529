#!/bin/sh
# On the sending host, as root: the direct route itself. `probe` logs in to the receiving
# host with the one-time key (the host key checked against the one the operator checked);
# `send` runs SEND and pipes its output straight into the receiving host's forced command.
# Arguments: DIR (key.sh's), USER, HOST, PORT, CIPHERS (OpenSSH's Ciphers, AES-GCM first:
# the CPU's AES instructions make it the cheapest), probe | send SEND.
# Exit: 0; for send, ssh's status when the receiving side failed (the far side's own, or
# 255: the connection failed or the far side was ended by a signal), else 20 when SEND did.
set -u
dir=$1 user=$2 host=$3 port=$4 ciphers=$5 mode=$6
to() {
	ssh -F /dev/null -i "$dir/key" -o IdentitiesOnly=yes -o IdentityAgent=none \
		-o UserKnownHostsFile="$dir/known_hosts" -o GlobalKnownHostsFile=/dev/null \
		-o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10 \
		-o ServerAliveInterval=15 -o ServerAliveCountMax=4 -o Compression=no \
		-o Ciphers="$ciphers" -o LogLevel=ERROR -p "$port" -l "$user" -- "$host" "$@"
}
case $mode in
probe)
	to probe </dev/null
	;;
send)
	send=$7
	rm -f -- "$dir/sent" "$dir/progress"
	# `bundle stream` keeps its byte count there; the watchdog passes it on.
	HA_SETUP_PROGRESS_FILE=$dir/progress
	export HA_SETUP_PROGRESS_FILE
	# Whoever started this may be gone (ha-setup killed, its connection cut): sshd then
	# closes our stdout, the next progress line there fails, and the whole transfer is
	# ended rather than left running with its backup locks on this host.
	(
		trap '' PIPE
		# sleep holds none of our pipes: killed, this subshell closes them at once.
		while sleep 1 0<&- >/dev/null 2>&1; do
			printf 'progress %s\n' "$(cat -- "$dir/progress" 2>/dev/null || echo 0)" || break
		done
		kill -TERM 0
	) &
	watchdog=$!
	{
		sh -c "$send"
		echo $? >"$dir/sent"
	} | to receive
	received=$?
	kill "$watchdog" 2>/dev/null
	sent=$(cat -- "$dir/sent" 2>/dev/null) || sent=1
	if [ "$received" != 0 ]; then
		exit "$received"
	fi
	if [ "$sent" != 0 ]; then
		exit 20
	fi
	;;
*)
	echo "send.sh: unknown mode $mode" >&2
	exit 2
	;;
esac
