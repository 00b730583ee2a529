#!/bin/sh
# On a node, as root: what each [[sync_files]] path is, entry by entry, never its contents:
# for every entry (a directory recursively) its type, mode, owner and group (name and id),
# size and, for a file, its SHA-256. Also whether named users and groups exist here.
# Arguments, each prefixed: p:PATH (numbered from 0 in the order given), u:USER, g:GROUP.
# Output: NUL-terminated records of tab-separated fields, the free-form one last:
#   path I STATE          STATE: present, symlink, other, missing, noparent (its directory too)
#   entry I TYPE MODE USER UID GROUP GID SIZE REL   (find's %y %m %u %U %g %G %s %P)
#   sum I SHA256 REL
#   staged I              PATH.ha-setup-new is there: what an interrupted copy left
#   user yes|no NAME, group yes|no NAME
set -u
i=0
for arg; do
	case $arg in
	u:*)
		name=${arg#u:}
		if getent passwd -- "$name" >/dev/null; then known=yes; else known=no; fi
		printf 'user\t%s\t%s\0' "$known" "$name"
		;;
	g:*)
		name=${arg#g:}
		if getent group -- "$name" >/dev/null; then known=yes; else known=no; fi
		printf 'group\t%s\t%s\0' "$known" "$name"
		;;
	p:*)
		path=${arg#p:}
		if [ -e "$path.ha-setup-new" ] || [ -L "$path.ha-setup-new" ]; then
			printf 'staged\t%s\0' "$i"
		fi
		if [ -L "$path" ]; then
			printf 'path\t%s\tsymlink\0' "$i"
		elif [ -f "$path" ] || [ -d "$path" ]; then
			printf 'path\t%s\tpresent\0' "$i"
			find "$path" -printf "entry\t$i\t%y\t%m\t%u\t%U\t%g\t%G\t%s\t%P\0" || exit 1
			# One digest per file: the relative name is what the path's own name is cut from.
			find "$path" -type f -exec sh -c '
				i=$1 top=$2
				shift 2
				for f; do
					sum=$(sha256sum <"$f") || exit 1
					rel=${f#"$top"}
					printf "sum\t%s\t%s\t%s\0" "$i" "${sum%% *}" "${rel#/}"
				done' sh "$i" "$path" {} + || exit 1
		elif [ -e "$path" ]; then
			printf 'path\t%s\tother\0' "$i"
		elif [ -d "$(dirname -- "$path")" ]; then
			printf 'path\t%s\tmissing\0' "$i"
		else
			printf 'path\t%s\tnoparent\0' "$i"
		fi
		i=$((i + 1))
		;;
	*)
		echo "describe.sh: unknown argument kind: $arg" >&2
		exit 2
		;;
	esac
done
