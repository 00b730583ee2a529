# shellcheck shell=sh
# The cluster lock file on one database host (src/lock.rs runs this as root):
#   sh -c "$script" sh ACTION PATH [ARG]
# Values come only as arguments; the holder's JSON comes on stdin.
#
#   take PATH          creates PATH from stdin, only if PATH does not exist (link(2) fails
#                      on an existing name, so two takers cannot both succeed, and the file
#                      never appears half written). Answers "taken", or "held SHA256" and
#                      then the file's bytes (SHA256 is theirs, for replace), or "damaged"
#                      and then why.
#   replace PATH HASH  replaces PATH with stdin, only if PATH's sha256 is still HASH (the
#                      stale content the caller saw). Answers "replaced" or "changed".
#   release PATH TOKEN removes PATH, only if it holds TOKEN. Answers "released", "absent"
#                      or "not-ours".
#
# Exit status 0 comes with one of those answers on the first line of stdout; anything else
# is an error, explained on stderr. replace and release hold flock(1) on PATH's directory,
# so a check and the change that follows it cannot interleave with another's.
set -u
umask 077

fail() {
    printf 'ha-setup lock: %s\n' "$*" >&2
    exit 1
}

[ "$#" -ge 2 ] || fail "usage: ACTION PATH [ARG]"
action=$1
path=$2
dir=$(dirname -- "$path") || fail "bad lock path: $path"
work=

cleanup() {
    if [ -n "$work" ]; then
        rm -rf -- "$work"
    fi
}
trap cleanup EXIT
trap 'exit 129' HUP INT TERM PIPE

command -v flock >/dev/null 2>&1 || fail "flock is missing on this host: install util-linux"

# A private scratch directory beside the lock, so a link or rename from it is atomic.
prepare() {
    mkdir -p -- "$dir" || fail "cannot create $dir"
    work=$(mktemp -d "$dir/.lock-XXXXXX") || fail "cannot create a scratch directory in $dir"
    cat >"$work/new" || fail "cannot write $work/new"
    [ -s "$work/new" ] || fail "no lock content on stdin"
}

# Serialises replace and release on this host (fd 9 is the directory itself).
serialise() {
    exec 9<"$dir"
    flock -w 30 9 || fail "$dir stayed locked by another ha-setup for 30 s"
}

not_a_file() {
    [ -L "$path" ] || { [ -e "$path" ] && [ ! -f "$path" ]; }
}

take() {
    prepare
    tries=0
    while [ "$tries" -lt 20 ]; do
        tries=$((tries + 1))
        if not_a_file; then
            echo damaged
            echo "$path is not a regular file"
            return
        fi
        if ln -- "$work/new" "$path" 2>"$work/err"; then
            echo taken
            return
        fi
        if [ ! -e "$path" ]; then
            # Released between the two steps, or ln failed for another reason: again,
            # and say why if it keeps failing.
            continue
        fi
        if cat -- "$path" >"$work/held" 2>"$work/err"; then
            seen=$(sha256sum <"$work/held") || fail "cannot hash $work/held"
            echo "held ${seen%% *}"
            cat -- "$work/held"
            return
        fi
        if [ -e "$path" ]; then
            echo damaged
            echo "cannot read $path: $(cat -- "$work/err")"
            return
        fi
    done
    fail "cannot create $path: $(cat -- "$work/err")"
}

replace() {
    [ "$#" -eq 3 ] || fail "usage: replace PATH HASH"
    expected=$3
    prepare
    serialise
    if [ ! -f "$path" ] || not_a_file; then
        echo changed
        return
    fi
    now=$(sha256sum <"$path") || fail "cannot read $path"
    now=${now%% *}
    if [ "$now" != "$expected" ]; then
        echo changed
        return
    fi
    mv -f -- "$work/new" "$path" || fail "cannot replace $path"
    echo replaced
}

release() {
    [ "$#" -eq 3 ] || fail "usage: release PATH TOKEN"
    token=$3
    case $token in
    '' | *[!0-9a-f]*) fail "bad token: $token" ;;
    *) ;;
    esac
    if [ ! -d "$dir" ]; then
        echo absent
        return
    fi
    serialise
    if [ ! -e "$path" ] && [ ! -L "$path" ]; then
        echo absent
        return
    fi
    if [ -f "$path" ] && grep -qF -- "\"token\":\"$token\"" "$path"; then
        rm -f -- "$path" || fail "cannot remove $path"
        echo released
    else
        echo not-ours
    fi
}

case $action in
take) take ;;
replace) replace "$@" ;;
release) release "$@" ;;
*) fail "unknown action: $action" ;;
esac
