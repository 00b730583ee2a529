#!/bin/sh
# The filesystem a path is on, or would be on once made (its nearest existing ancestor's):
# bytes free, what is mounted and where, and the bytes the path itself takes.
# Argument: the path. Output: free=, device=, mount=, used= lines.
path=$1
p=$path
while [ ! -e "$p" ]; do p=$(dirname -- "$p"); done
df -B1 --output=avail,source,target -- "$p" | awk 'NR == 2 {
	free = $1; device = $2
	sub(/^[[:space:]]*[^[:space:]]+[[:space:]]+[^[:space:]]+[[:space:]]+/, "")
	printf "free=%s\ndevice=%s\nmount=%s\n", free, device, $0
}'
if [ -e "$path" ]; then
	printf 'used=%s\n' "$(du -s -B1 -- "$path" | cut -f1)"
else
	echo used=0
fi
