#!/bin/sh
# On the receiving host, as root: adds or removes the one-time key of a direct route in the
# login user's authorized_keys. Every line ha-setup added (its comment starts with MARK) is
# removed first, so what a killed run left goes too. The file keeps its owner and mode and
# is replaced atomically.
# Arguments: add USER MARK FROM COMMAND KEY (COMMAND with its double quotes escaped),
# remove USER MARK, or check USER MARK (prints `present` when a line is there, changes
# nothing). An added key can log in for an hour at the most, by this host's clock, should
# its removal fail.
set -eu
action=$1 user=$2 mark=$3
home=$(getent passwd "$user" | cut -d: -f6)
if [ -z "$home" ] || [ ! -d "$home" ]; then
	echo "the user $user has no home directory here, so no authorized_keys" >&2
	exit 3
fi
dir=$home/.ssh
file=$dir/authorized_keys
# A link there belongs to a setup of its own (keys kept elsewhere): never replaced.
if [ -L "$file" ] || [ -L "$dir" ]; then
	[ "$action" = add ] || exit 0
	echo "$file is a symbolic link, which ha-setup does not edit" >&2
	exit 3
fi
if [ "$action" = check ]; then
	if [ -f "$file" ] && grep -q -F -e " $mark" -- "$file"; then echo present; fi
	exit 0
fi
if [ ! -d "$dir" ]; then
	[ "$action" = add ] || exit 0
	mkdir -m 0700 -- "$dir"
	chown -- "$user" "$dir"
fi
if [ ! -e "$file" ]; then
	[ "$action" = add ] || exit 0
	: >"$file"
	chmod 0600 -- "$file"
	chown -- "$user" "$file"
fi
tmp=$(mktemp "$dir/.authorized_keys.ha-setup.XXXXXX")
trap 'rm -f -- "$tmp"' EXIT
grep -v -F -e " $mark" -- "$file" >"$tmp" || true
if [ "$action" = add ]; then
	expiry=$(date -d '+1 hour' +%Y%m%d%H%M)
	printf 'restrict,from="%s",expiry-time="%s",command="%s" %s\n' "$4" "$expiry" "$5" "$6" >>"$tmp"
fi
chmod --reference="$file" -- "$tmp"
chown --reference="$file" -- "$tmp"
sync -- "$tmp" 2>/dev/null || sync
mv -f -- "$tmp" "$file"
trap - EXIT
