#!/bin/sh
# On a node, as root: puts the checked copy of a [[sync_files]] path in place, keeping
# what was there as PATH.ha-setup-old-STAMP (a suffix .N when that name is taken).
# A file replacing a file: the old one gets its second name first (a hard link, else a
# copy), then one rename(2) swaps in the new, so PATH is never missing. A directory takes
# two renames; a run stopped between them leaves PATH missing and the old copy kept, and
# the next run copies PATH again.
# Arguments: PATH STAGE STAMP (STAGE holds the copy under PATH's own name).
# Output: `kept OLD`, or `placed` when nothing was there.
set -eu
path=$1 stage=$2 stamp=$3
new=$stage/$(basename -- "$path")
d=$(dirname -- "$path")
if [ ! -e "$new" ]; then
	echo "no checked copy at $new" >&2
	exit 3
fi
# The data reaches the disk before any name points at it.
find "$new" -exec sync -- {} + 2>/dev/null || sync
old=
if [ -e "$path" ] || [ -L "$path" ]; then
	old=$path.ha-setup-old-$stamp
	n=1
	while [ -e "$old" ] || [ -L "$old" ]; do
		old=$path.ha-setup-old-$stamp.$n
		n=$((n + 1))
	done
	if [ -f "$path" ] && [ ! -L "$path" ] && [ ! -d "$new" ]; then
		ln -- "$path" "$old" 2>/dev/null || cp -p -- "$path" "$old"
		mv -f -- "$new" "$path"
	else
		mv -T -- "$path" "$old"
		mv -T -- "$new" "$path"
	fi
fi
if [ -z "$old" ]; then
	mv -T -- "$new" "$path"
fi
rmdir -- "$stage"
sync -- "$d" 2>/dev/null || sync
if [ -n "$old" ]; then
	echo "kept $old"
else
	echo placed
fi
