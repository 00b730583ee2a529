#!/usr/bin/env bash
# tests/lab/lab.sh: the ha-setup test lab on one Debian 12 machine (root, no systemd needed).
#
# Three database hosts (primary, secondary, tertiary) and an operator, each in its own
# network, mount, UTS and PID namespaces, joined by a bridge in a fifth network namespace
# (ha-lab-switch).
# Several labs can stand side by side (HA_LAB_INSTANCE=2 … 9: other namespaces, run and
# state directories, cgroups and lock), so that a test run can use two at once.
# The hosts run real sshd, MariaDB 10.11 and PostgreSQL 15 with Debian's default paths;
# MariaDB's datadir is a file system of its own (a loop-mounted ext4 image), as on a
# production host with a dedicated data volume.
# Usage: see usage() below or tests/lab/README.md.
#
# Safety rules this script keeps (the machine's own network and services must never be
# touched):
#   * Every `ip` command that creates or changes a link, address or route carries
#     `-n <lab netns>`: veth pairs are created directly inside the lab namespaces, so
#     nothing ever appears in the machine's root network namespace.
#   * Lab addresses are 198.51.100.0/24 (TEST-NET-2), only inside lab namespaces, and no
#     lab namespace has a default route: lab traffic cannot go anywhere else.
#   * Processes are only ever signalled by PID, and only PIDs that live in one of the lab's
#     own namespaces (`ip netns pids`, or membership of a lab mount or PID namespace).
#   * Packet filters (`block`) are nftables rules inside a lab host's network namespace,
#     entered with `nsenter --net`; nft never runs in the machine's namespace.
#   * Loop devices are only ever attached to the lab's own images under $HA_LAB_ROOT, and
#     only those are detached.
#   * Everything that deletes files inside a host first checks that it runs in the host's
#     mount namespace (not the machine's) and that the path is on the host's private
#     overlay or bind mount.
set -euo pipefail

# ---------------------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------------------

readonly DB_HOSTS=(primary secondary tertiary)
readonly HOSTS=(operator "${DB_HOSTS[@]}")
readonly SWITCH=switch
declare -rA ADDR=([operator]=198.51.100.10 [primary]=198.51.100.11 [secondary]=198.51.100.12
    [tertiary]=198.51.100.13)
readonly PREFIX_LEN=24

# Which lab: 1 (the default) is named ha-lab; N > 1 is ha-labN, with its state in
# ${HA_LAB_ROOT}N. Their addresses are the same: each lab's network is its own.
INSTANCE=${HA_LAB_INSTANCE:-1}
if [[ ! $INSTANCE =~ ^[1-9]$ ]]; then
    printf 'lab: error: HA_LAB_INSTANCE=%s: want a lab number from 1 to 9\n' "$INSTANCE" >&2
    exit 2
fi
NAME=ha-lab
[[ $INSTANCE == 1 ]] || NAME+=$INSTANCE
readonly INSTANCE NAME
LAB_ROOT=${HA_LAB_ROOT:-/var/tmp/ha-lab}
[[ $INSTANCE == 1 ]] || LAB_ROOT+=$INSTANCE
# The datadir layout `reset` gives the database hosts: mount (default) or plain, e.g. to run
# a whole suite against the plain-directory layout (set it for the test run: tests reset).
RESET_LAYOUT=${HA_LAB_RESET_LAYOUT:-mount}
readonly RUN_DIR=/run/$NAME
readonly NSDIR=$RUN_DIR/ns
# Left by the lab that made /run/netns (see add_switch_netns): whichever lab goes last
# takes it away.
readonly MADE_RUN_NETNS=/run/ha-lab.made-run-netns
readonly CLEAN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
readonly PG_VERSION=15
# The lab's non-root login's password: a lab-only value, on purpose not a secret.
readonly LAB_ADMIN_PASSWORD=lab-admin-pass
readonly PG_CLUSTER=main
readonly PACKAGES=(mariadb-server mariadb-backup postgresql openssh-server openssh-client
    iproute2 jq tmux util-linux mount procps perl-base coreutils sudo e2fsprogs nftables
    galera-4 galera-arbitrator-4 socat)
# MariaDB's data volume on each database host: a sparse ext4 image, loop-mounted on
# /var/lib/mysql inside the host (only what is written takes space on the machine).
readonly DATA_SIZE=8G
readonly DATA_IMG=mysql-data.ext4
readonly DEFAULT_DATADIR=/var/lib/mysql
# The nftables table that `block` fills, in the receiving host's network namespace.
readonly NFT_TABLE=ha_lab_block

SELF=$(readlink -f "${BASH_SOURCE[0]}")
readonly SELF

# ---------------------------------------------------------------------------------------
# Small helpers
# ---------------------------------------------------------------------------------------

log() { printf 'lab: %s\n' "$*" >&2; }
die() { printf 'lab: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<'EOF'
usage: lab.sh COMMAND [ARGS]   (as root)

  up                  create the lab (or check it and restart what is down); idempotent
  down                remove every namespace, process, mount and file of the lab; idempotent
  reset [HOST...]     return hosts to pristine (default: primary secondary tertiary): data,
                      config, the default datadir layout; also heals their links and blocks
  cut HOST            take HOST off the network (switch port down: packets silently dropped)
  heal HOST           put HOST back on the network, and lift every block from or to HOST
  block FROM TO       silently drop packets from FROM arriving at TO (a rule in TO only)
  break-after TO PORT MIB
                      reset every connection to TO's TCP PORT once MIB MiB have arrived there
                      (a transfer cut mid-way; lifted by heal TO or reset)
  unblock FROM TO     lift that block
  flavour HOST [plain|systemd]
                      print (without a flavour) or change what runs as a database host's
                      init: `plain` (default: a small reaper; services through their init
                      scripts) or `systemd` (services are units); changing it reboots the host
  datadir HOST [mount|plain [PATH]]
                      print (without a layout) or change MariaDB's datadir layout on a
                      database host: `mount` = the data volume mounted on PATH (default),
                      `plain` = a plain directory PATH on its parent's file system; PATH is
                      /var/lib/mysql (default) or a path under /srv (the server's config
                      then names it); the data moves along, MariaDB is restarted
  ssh HOST [CMD...]   run CMD on HOST with the real OpenSSH client, from the operator
                      (HOST: primary|secondary|tertiary)
  exec HOST CMD...    run CMD directly in HOST's namespaces
                      (HOST: primary|secondary|tertiary|operator)
  addr HOST           print HOST's lab address
  env                 print KEY=value lines describing the lab
  config              print an ha-setup config for the lab pair
  status              one line per host; exit 0 only if everything is up

Environment: HA_LAB_INSTANCE (1 to 9, default 1) chooses one of several labs that can stand
side by side; HA_LAB_ROOT (default /var/tmp/ha-lab) holds lab 1's state (lab N's: that path
followed by N);
HA_LAB_RESET_LAYOUT=plain makes `reset` give the database hosts the plain datadir layout.
EOF
    exit 2
}

netns_of() { printf '%s-%s' "$NAME" "$1"; }

is_host() {
    local h
    for h in "${HOSTS[@]}"; do [[ $1 == "$h" ]] && return 0; done
    return 1
}

is_db_host() {
    local h
    for h in "${DB_HOSTS[@]}"; do [[ $1 == "$h" ]] && return 0; done
    return 1
}

# Is PATH a mount point in *our* (the machine's) mount namespace? Works for files too
# (the persistent namespace files are bind mounts onto plain files).
is_mounted() { awk -v p="$1" '$5 == p { found = 1 } END { exit !found }' /proc/self/mountinfo; }

# The lab root ends up in `rm -rf` and in overlayfs mount options (where ',' and ':' are
# separators), and it must not lie in a directory the hosts see privately.
validate_lab_root() {
    [[ $LAB_ROOT =~ ^(/[A-Za-z0-9._-]+){2,}$ ]] ||
        die "HA_LAB_ROOT=$LAB_ROOT: want an absolute path of at least two plain components"
    [[ $LAB_ROOT != */. && $LAB_ROOT != */.. && $LAB_ROOT != */./* && $LAB_ROOT != */../* ]] ||
        die "HA_LAB_ROOT=$LAB_ROOT: no . or .. components please"
    local private
    for private in /etc /root /tmp /run /var/lib /var/log /dev /proc /sys /usr /bin /sbin /lib; do
        [[ $LAB_ROOT == "$private" || $LAB_ROOT == "$private"/* ]] &&
            die "HA_LAB_ROOT=$LAB_ROOT: must not be under $private (the hosts see that privately)"
    done
    return 0
}

require_root() {
    [[ $(id -u) == 0 ]] || { printf 'lab: error: run as root (the lab makes network and mount namespaces)\n' >&2; exit 2; }
}

# Mutating commands must run from the machine's own namespaces, never from inside a lab host:
# otherwise "outside" paths and `ip netns` would mean something else. (/proc/1/ns is not
# readable here, so compare with the lab's own namespaces instead.)
require_machine_namespaces() {
    local f t
    [[ $(findmnt -n -o SOURCE --mountpoint /run 2>/dev/null | tail -n 1) != ha-lab-* ]] ||
        die "run lab.sh from the machine, not from inside a lab host"
    for f in "/run/netns/$NAME-"* "$NSDIR"/*.mnt "$NSDIR"/*.uts "$NSDIR"/*.pid; do
        [[ -e $f ]] || continue
        case $f in *.mnt) t=mnt ;; *.uts) t=uts ;; *.pid) t=pid ;; *) t=net ;; esac
        [[ "$t:[$(stat -L -c %i "$f")]" != "$(readlink /proc/self/ns/$t)" ]] ||
            die "run lab.sh from the machine's own namespaces, not from inside $f"
    done
}

# Serialises up/down/reset/cut/heal of one lab. Lab 1's lock is on the script file itself,
# so that no lock file is left behind after `down`; another lab's is a file in /run/lock
# (gone at the machine's reboot). fd 9 is closed for everything that may daemonise (see
# ns_raw), or a daemon would hold the lock forever.
take_lock() {
    if [[ $INSTANCE == 1 ]]; then
        exec 9<"$SELF"
    else
        install -d -m 1777 /run/lock
        exec 9>>"/run/lock/$NAME.lock"
    fi
    flock -w 900 9 || die "timed out waiting for another lab.sh to finish"
}

# What the labs share on the machine (installing packages, the /run/netns mount that `down`
# takes away once no lab uses it): lab 1's lock, also taken by the other labs for that.
# fd 8, closed like fd 9.
with_machine_lock() {
    if [[ $INSTANCE == 1 ]]; then
        "$@"
        return
    fi
    exec 8<"$SELF"
    flock -w 900 8 || die "timed out waiting for lab 1's lab.sh to finish"
    "$@"
    exec 8<&-
}

# ---------------------------------------------------------------------------------------
# Packages
# ---------------------------------------------------------------------------------------

ensure_packages() {
    local missing=() p
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null | grep -q '^ii' || missing+=("$p")
    done
    [[ ${#missing[@]} -eq 0 ]] && return 0
    log "installing ${missing[*]}"
    # Package postinst scripts would otherwise start sshd, MariaDB and PostgreSQL in the
    # machine's root namespaces. policy-rc.d answering 101 forbids that.
    local made_policy=0
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        printf '#!/bin/sh\n# made by tests/lab/lab.sh for the duration of apt-get install\nexit 101\n' \
            >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT # also when interrupted
    elif ! grep -q 'exit 101' /usr/sbin/policy-rc.d; then
        log "warning: /usr/sbin/policy-rc.d exists but does not 'exit 101'; leaving it alone"
    fi
    local rc=0
    { apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"; } 9<&- >&2 || rc=$?
    if [[ $made_policy == 1 ]]; then
        rm -f /usr/sbin/policy-rc.d
        trap - EXIT
    fi
    [[ $rc == 0 ]] || die "apt-get failed (exit $rc)"
}

# ---------------------------------------------------------------------------------------
# Entering the hosts
# ---------------------------------------------------------------------------------------

# nsenter opens all namespace files before switching, so /run/netns and $NSDIR need not be
# visible inside the host (they are not: each host has its own /run). With --pid, nsenter
# forks: the command runs in the host's PID namespace (a child of nsenter, which passes its
# exit status on), and whatever it leaves behind is orphaned to the host's own init.
ns_args() {
    printf '%s\n' --net="/run/netns/$(netns_of "$1")" --mount="$NSDIR/$1.mnt" --uts="$NSDIR/$1.uts" \
        --pid="$NSDIR/$1.pid"
}

ns_raw() {
    local h=$1 ns
    shift
    mapfile -t ns < <(ns_args "$h")
    nsenter "${ns[@]}" -- "$@" 9<&-
}

# Functions that run *inside* a host (defined further below, all named in_*). They are
# shipped into a clean `bash -c` with `declare -f`, with a clean environment like a service
# manager would give, and they refuse to run if they somehow ended up in the machine's
# namespaces.
INNER_FUNCS=()
inner_env() {
    local h=$1
    printf '%s\n' "PATH=$CLEAN_PATH" HOME=/root LANG=C.UTF-8 TERM=dumb \
        "LAB_ROOT=$LAB_ROOT" "LAB_HOST=$h" "LAB_LOG=$LAB_ROOT/$h/lab.log" \
        "LAB_ADMIN_PASSWORD=$LAB_ADMIN_PASSWORD" \
        "LAB_ROOT_MNT_NS=$(readlink /proc/self/ns/mnt)" "LAB_ROOT_UTS_NS=$(readlink /proc/self/ns/uts)" \
        "LAB_ROOT_PID_NS=$(readlink /proc/self/ns/pid)" \
        "LAB_DATA_IMG=$LAB_ROOT/$h/$DATA_IMG" "LAB_DEFAULT_DATADIR=$DEFAULT_DATADIR" \
        "PG_VERSION=$PG_VERSION" "PG_CLUSTER=$PG_CLUSTER"
}
inner_script() {
    declare -f "${INNER_FUNCS[@]}"
    printf '%s\n' 'set -euo pipefail' 'cd /' 'in_guard' '"$@"'
}

# ns_fn HOST FUNC ARGS...: run an inner function in HOST.
ns_fn() {
    local h=$1
    shift
    local env
    mapfile -t env < <(inner_env "$h")
    ns_raw "$h" env -i "${env[@]}" bash -c "$(inner_script)" "lab-$h" "$@"
}

# Each host has its own PID namespace. Its PID 1 first runs BOOT_SH (below), which mounts
# the namespace's own /proc on the host's /proc (so `ps`, `pgrep` and `kill` in a host see
# only that host) and a fresh /run, then becomes the host's init: by default ("plain"
# flavour) this small one (Perl, as perl-base is always there), which reaps whatever gets
# orphaned in the host for as long as the host lives; or systemd (`lab.sh flavour HOST
# systemd`). ha-lab-init ignores every signal: from inside the host nothing can kill it
# (the kernel protects a namespace's init), and `down` ends it with SIGKILL from the
# machine, which also kills every process left in the host.
# Why an init of our own: without one, orphans would go to the machine's PID 1, which is not
# a real init here (process_api reaps only every second or two; other machines may not reap
# at all). Until reaped, a dead daemon is a zombie, `kill -0` on it succeeds, and a stale pid
# file pointing at it makes PostgreSQL ("lock file already exists") and mysqld_safe refuse to
# start: crash-and-restart tests would flake. With the host's init, a daemon started through
# `lab.sh exec` is reaped too.
# shellcheck disable=SC2016 # Perl code: its $ are Perl's
readonly INIT_PL='
use strict; use warnings; use POSIX ();
$0 = "ha-lab-init";    # also the comm, which init_pid looks for
$SIG{$_} = "IGNORE" for qw(TERM INT HUP QUIT PIPE USR1 USR2 ALRM);
my $reap = sub { 1 while waitpid(-1, POSIX::WNOHANG()) > 0; };
$SIG{CHLD} = $reap;
while (1) { $reap->(); sleep 60; }
'

# What PID 1 of a host's PID namespace runs first (bash, in the host's network, mount and
# UTS namespaces): the namespace's own /proc, a fresh /run (as after a reboot: no pid file,
# socket or /run/systemd of an earlier boot survives), then the init of the flavour.
# Arguments: FLAVOUR (plain|systemd), CGROUP (how the machine mounts cgroups: hybrid,
# unified or none), INIT_PL. LAB_HOST comes in the environment.
# For systemd, it also does what a container manager does (systemd-nspawn): /proc/sys and
# /sys read-only (so no unit changes the machine's kernel settings), a cgroup tree of the
# host's own (a cgroup namespace rooted at /ha-lab/HOST, mounted on /sys/fs/cgroup), no
# /dev/console (it would be the machine's), units masked that would touch the machine or
# make no sense in a lab host (getty, clock, timers of apt and fstrim, kernel modules,
# binfmt, kernel file systems), garbd not started at boot, and no CAP_SYS_MODULE or
# CAP_SYS_TIME at all.
BOOT_SH=$(
    cat <<'EOF'
set -eu
flavour=$1 cgroup=$2 init_pl=$3
umount -l /proc 2>/dev/null || true
mount -t proc -o nosuid,nodev,noexec proc /proc
# At the first boot /run is still the machine's, with its bind mounts of namespace files
# (/run/netns/*, the lab's own), which must not stay referenced here, not even hidden below
# a tmpfs; at a reboot, the previous boot's. Off with all of it (only in this namespace).
awk '$5 == "/run" || index($5, "/run/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r t; do umount -l "$t" 2>/dev/null || true; done
mount -t tmpfs -o mode=755,nosuid,nodev "ha-lab-$LAB_HOST-run" /run
install -d -m 755 /run/sshd
install -d -m 1777 /run/lock
if id mysql >/dev/null 2>&1; then install -d -m 755 -o mysql -g mysql /run/mysqld; fi
if id postgres >/dev/null 2>&1; then install -d -m 2775 -o postgres -g postgres /run/postgresql; fi
if [ "$flavour" = plain ]; then exec perl -e "$init_pl"; fi
mount --bind /proc/sys /proc/sys
mount -o remount,bind,ro /proc/sys
umount -l /sys
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs /sys
case $cgroup in
hybrid)
    mount -t tmpfs -o mode=755,nosuid,nodev,noexec ha-lab-cgroup /sys/fs/cgroup
    mkdir /sys/fs/cgroup/systemd /sys/fs/cgroup/unified
    mount -t cgroup -o none,name=systemd,nosuid,nodev,noexec cgroup /sys/fs/cgroup/systemd
    mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup/unified
    ;;
unified) mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 /sys/fs/cgroup ;;
esac
mountpoint -q /dev/console || mount --bind /dev/null /dev/console
for unit in getty@tty1.service console-getty.service systemd-timesyncd.service \
    systemd-time-wait-sync.service apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer \
    e2scrub_all.timer e2scrub_reap.service fstrim.timer man-db.timer systemd-tmpfiles-clean.timer \
    systemd-pstore.service systemd-random-seed.service modprobe@.service \
    systemd-modules-load.service systemd-sysctl.service systemd-binfmt.service \
    proc-sys-fs-binfmt_misc.automount sys-kernel-debug.mount sys-kernel-tracing.mount \
    sys-kernel-config.mount sys-fs-fuse-connections.mount dev-hugepages.mount dev-mqueue.mount; do
    ln -sfn /dev/null "/etc/systemd/system/$unit"
done
# galera-arbitrator-4 enables garbd at boot; unconfigured it fails (a degraded host). A test
# that needs garbd configures and starts it.
rm -f /etc/systemd/system/multi-user.target.wants/garb.service
export container=ha-lab
exec setpriv --bounding-set -sys_module,-sys_time -- /lib/systemd/systemd --system \
    --show-status=false --log-target=journal
EOF
)
readonly BOOT_SH

# Services are started under a small child-subreaper (Perl): it runs the start command,
# reports its exit status, then stays around (setsid, named ha-lab-reaper) reaping whatever
# gets orphaned below it, and exits when nothing is left. Inside the host's PID namespace
# the host's init would reap those orphans as well; the reaper remains for what else it
# does: the services get a session of their own, none of the caller's file descriptors
# (see below) and the host's lab.log as output, and lab.sh learns the start command's exit
# status without waiting for the daemons. Daemons that ha-setup starts over SSH are below
# sshd, and so below the reaper too.
# shellcheck disable=SC2016 # Perl code: its $ are Perl's
readonly REAPER_PL='
use strict; use warnings; use POSIX ();
my %prctl = (x86_64 => 157, aarch64 => 167, i686 => 172, i386 => 172, armv7l => 172,
             ppc64le => 171, s390x => 172, riscv64 => 167);
my ($log, @cmd) = @ARGV;
pipe(my $r, my $w) or die "pipe: $!";
my $reaper = fork // die "fork: $!";
if ($reaper) { close $w; my $st = <$r>; exit(defined $st ? $st + 0 : 1); }
close $r;
# Whoever asked may be gone (lab.sh interrupted): keep going, and keep reaping.
$SIG{PIPE} = $SIG{INT} = $SIG{HUP} = "IGNORE";
POSIX::setsid();
# Services must not keep what the caller had open (a test lock taken with flock(1) would
# stay held for as long as the daemons live).
POSIX::close($_) for grep { $_ != fileno($w) } 3 .. 1023;
open STDIN, "<", "/dev/null"; open STDOUT, ">>", $log; open STDERR, ">&", \*STDOUT;
$0 = "ha-lab-reaper";
my $nr = $prctl{(POSIX::uname())[4]};
if (!$nr || syscall($nr, 36, 1, 0, 0, 0) != 0) { warn "ha-lab-reaper: no PR_SET_CHILD_SUBREAPER\n"; }
my $child = fork // die "fork: $!";
if (!$child) {    # services start with default signal handling, as from a real init
    $SIG{$_} = "DEFAULT" for qw(PIPE INT HUP);
    close $w;
    exec { $cmd[0] } @cmd or die "exec $cmd[0]: $!";
}
waitpid($child, 0);
my $st = ($? & 127) ? 128 + ($? & 127) : $? >> 8;
print {$w} "$st\n"; close $w;
1 while wait() != -1;
'

# ns_fn_reaped HOST FUNC ARGS...: like ns_fn, but under a reaper (for starting services).
ns_fn_reaped() {
    local h=$1
    shift
    local env
    mapfile -t env < <(inner_env "$h")
    ns_raw "$h" env -i "${env[@]}" perl -e "$REAPER_PL" "$LAB_ROOT/$h/lab.log" \
        bash -c "$(inner_script)" "lab-$h" "$@"
}

# ---------------------------------------------------------------------------------------
# Inner functions (run inside a host's namespaces; see ns_fn)
# ---------------------------------------------------------------------------------------

# LAB_ROOT, LAB_HOST, LAB_LOG, LAB_ROOT_MNT_NS, LAB_ROOT_UTS_NS, LAB_ROOT_PID_NS, LAB_DATA_IMG,
# LAB_DEFAULT_DATADIR, PG_VERSION and PG_CLUSTER come from inner_env.
# shellcheck disable=SC2153
in_guard() {
    [[ $(readlink /proc/self/ns/mnt) != "$LAB_ROOT_MNT_NS" && $(readlink /proc/self/ns/uts) != "$LAB_ROOT_UTS_NS" &&
        $(readlink /proc/self/ns/pid) != "$LAB_ROOT_PID_NS" ]] || {
        echo "lab($LAB_HOST): refusing: not inside the host's own mount, UTS and PID namespaces" >&2
        exit 99
    }
}

in_say() { printf 'lab(%s): %s\n' "$LAB_HOST" "$*" >&2; }
in_die() { in_say "error: $*"; exit 1; }

# Is PID a live (not zombie) process in this host's network namespace, optionally with the
# given comm? A pid file can outlive its process (and a PID its pid file). Seen from inside
# a host, /proc holds only the host's own processes (its PID namespace); the network
# namespace check is belt and braces.
in_live_pid() {
    local pid=$1 comm=${2:-} stat state
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    state=${stat##*) }
    state=${state%% *}
    [[ $state != Z && $state != X ]] || return 1
    [[ $(readlink "/proc/$pid/ns/net" 2>/dev/null) == "$(readlink /proc/self/ns/net)" ]] || return 1
    [[ -z $comm || $(cat "/proc/$pid/comm" 2>/dev/null) == "$comm" ]]
}

in_pidfile() {
    local pid=""
    if [[ -r $1 ]]; then read -r pid <"$1" || true; fi
    printf '%s' "$pid"
}

# Listening on port 22 (a banner probe would log a "kex_exchange_identification" line in
# the host's sshd log every time).
in_sshd_up() { [[ -n $(ss -Hltn 'sport = :22' 2>/dev/null) ]]; }
in_mariadb_up() { timeout 10 mariadb -e 'select 1' >/dev/null 2>&1; }
in_pg_up() { timeout 10 runuser -u postgres -- psql -Atc 'select 1' >/dev/null 2>&1; }

in_check() {
    local s=down m=down p=down
    in_sshd_up && s=up
    in_mariadb_up && m=up
    in_pg_up && p=up
    printf 'sshd=%s mariadb=%s postgresql=%s\n' "$s" "$m" "$p"
}

# Every path a host must have privately. in_restore and in_setup_mounts rely on this.
in_verify_mounts() {
    local role=$1 d fs
    [[ $(hostname) == "$LAB_HOST" ]] || in_die "hostname is $(hostname)"
    for d in /etc /root $([[ $role == db ]] && echo /var/lib /var/log); do
        fs=$(findmnt -rn -o FSTYPE --mountpoint "$d" | tail -n 1)
        [[ $fs == overlay ]] || in_die "$d is not this host's overlay (${fs:-not a mount point})"
    done
    for d in /run /dev/shm; do
        fs=$(findmnt -rn -o FSTYPE --mountpoint "$d" | tail -n 1)
        [[ $fs == tmpfs ]] || in_die "$d is not this host's tmpfs"
    done
    # /proc is the host's own PID namespace's, whose PID 1 is the host's init.
    case $(cat /proc/1/comm 2>/dev/null) in ha-lab-init | systemd) ;; *) in_die "/proc is not this host's own" ;; esac
    for d in /root/.ssh /tmp /etc/hosts /etc/hostname \
        $([[ $role == db ]] && echo /etc/mysql /etc/postgresql /etc/ssh /var/log/mysql /var/log/postgresql /srv); do
        mountpoint -q "$d" || in_die "$d is not this host's bind mount"
    done
}

# Builds the host's private view of the file system. Runs once, at `up`.
in_setup_mounts() {
    local role=$1 r=$LAB_ROOT/$LAB_HOST
    hostname "$LAB_HOST"
    # Belt and braces: nothing mounted here may propagate back to the machine.
    mount --make-rprivate /
    # /proc and /run are the host's own already (BOOT_SH).
    mount -t tmpfs -o mode=1777,nosuid,nodev "ha-lab-$LAB_HOST-shm" /dev/shm

    # Overlays: the host sees the machine's /etc, /root (and /var/lib, /var/log on the
    # database hosts) but its writes land in its own upper directory. This is also what
    # lets missing mount points (/root/.ssh, /var/log/mysql) be created without touching
    # the machine.
    local spec dir name
    for spec in /etc:etc /root:root $([[ $role == db ]] && echo /var/lib:varlib /var/log:varlog); do
        dir=${spec%%:*} name=${spec##*:}
        mount -t overlay "ha-lab-$LAB_HOST-$name" \
            -o "lowerdir=$dir,upperdir=$r/ovl/$name/upper,workdir=$r/ovl/$name/work,redirect_dir=on" "$dir"
    done

    if [[ $role == db ]]; then
        [[ $(findmnt -rn -o FSTYPE --mountpoint /var/lib | tail -n 1) == overlay ]] ||
            in_die "/var/lib is not an overlay: refusing to touch it"
        # Fresh, upper-only directories (the machine's own stay hidden below).
        rm -rf --one-file-system /var/lib/mysql /var/lib/postgresql
        install -d -m 755 -o mysql -g mysql /var/lib/mysql
        install -d -m 755 -o postgres -g postgres /var/lib/postgresql
        mkdir -p /var/log/mysql /var/log/postgresql /srv
        mount --bind "$r/etc-mysql" /etc/mysql
        mount --bind "$r/etc-postgresql" /etc/postgresql
        mount --bind "$r/etc-ssh" /etc/ssh
        mount --bind "$r/log-mysql" /var/log/mysql
        mount --bind "$r/log-postgresql" /var/log/postgresql
        # /srv is private too: a relocated datadir (`lab.sh datadir HOST ... /srv/...`) lives there.
        mount --bind "$r/srv" /srv
        # MariaDB's data volume, a file system of its own on /var/lib/mysql, as on a
        # production host with a dedicated disk or LVM volume: `mv /var/lib/mysql ...` fails
        # with EBUSY, and its free space is its own.
        in_data_volume_mount "$LAB_DEFAULT_DATADIR"
    fi
    mkdir -p /root/.ssh
    mount --bind "$r/root-ssh" /root/.ssh
    mount --bind "$r/tmp" /tmp
    mount --bind "$r/hosts" /etc/hosts
    mount --bind "$r/hostname" /etc/hostname
    in_verify_mounts "$role"
}

# ---- MariaDB's data volume and datadir layout ----------------------------------------
# The volume is $LAB_DATA_IMG (an ext4 image under the lab root), attached to a loop device
# by `mount -o loop` (with autoclear: unmounting it detaches the loop device too).

# The loop device attached to this host's data image, if any.
in_data_volume_dev() { losetup -n -O NAME -j "$LAB_DATA_IMG" 2>/dev/null | head -n 1; }

# Where the data volume is mounted in this host (nothing if it is not).
in_data_volume_target() {
    local dev
    dev=$(in_data_volume_dev)
    [[ -n $dev ]] || return 0
    findmnt -rn -o TARGET -S "$dev" | head -n 1
}

in_data_volume_mount() {
    local target=$1 cur
    cur=$(in_data_volume_target)
    [[ -z $cur ]] || in_die "the data volume is already mounted on $cur"
    if mountpoint -q "$target"; then in_die "$target is a mount point already"; fi
    install -d -m 755 "$target"
    mount -o loop "$LAB_DATA_IMG" "$target" || in_die "mounting the data volume on $target failed"
    # A fresh ext4 file system has lost+found at its root, and so does this one.
    [[ -d $target/lost+found ]] || (cd "$target" && mklost+found >/dev/null)
    chown mysql:mysql "$target"
    chmod 755 "$target"
}

in_data_volume_umount() {
    local target
    target=$(in_data_volume_target)
    [[ -n $target ]] || return 0
    umount "$target" || in_die "unmounting the data volume from $target failed (still in use?)"
}

# A datadir path the lab may create, empty and remove: the default, or one under this
# host's private /srv.
in_datadir_path_ok() {
    [[ $1 == "$LAB_DEFAULT_DATADIR" || ($1 =~ ^/srv(/[A-Za-z0-9._-]+)+$ && $1 != */. && $1 != */.. &&
        $1 != */./* && $1 != */../*) ]]
}

# The datadir the server's configuration names (Debian's default when it names none).
in_configured_datadir() {
    local d
    d=$(my_print_defaults --mysqld 2>/dev/null | sed -n 's/^--datadir=//p' | tail -n 1)
    d=${d%/}
    printf '%s\n' "${d:-$LAB_DEFAULT_DATADIR}"
}

# "mount PATH" (the data volume is mounted on the datadir) or "plain PATH".
in_datadir_show() {
    local d
    d=$(in_configured_datadir)
    if [[ $(in_data_volume_target) == "$d" ]]; then echo "mount $d"; else echo "plain $d"; fi
}

# Empties a datadir in place, keeping a file system's lost+found.
in_empty_datadir() {
    find "$1" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf --one-file-system {} +
}

# Names the datadir in the server's configuration as an administrator would: the
# `datadir` line of 50-server.cnf (commented out again for Debian's default).
in_set_datadir_config() {
    local to=$1 cnf=/etc/mysql/mariadb.conf.d/50-server.cnf line
    if [[ $to == "$LAB_DEFAULT_DATADIR" ]]; then line="#datadir                 = $LAB_DEFAULT_DATADIR"; else line="datadir                 = $to"; fi
    grep -q '^#\?datadir[[:space:]]*=' "$cnf" || in_die "$cnf has no datadir line"
    sed -i "s|^#\?datadir[[:space:]]*=.*|$line|" "$cnf"
    [[ $(in_configured_datadir) == "$to" ]] || in_die "the configuration names $(in_configured_datadir), not $to"
}

# Moves MariaDB's data (stopped first) into LAYOUT (mount|plain) at TO, and names TO in
# the configuration. The caller starts the server again.
in_datadir_set() {
    local layout=$1 to=$2 from vol pid stage=$LAB_ROOT/$LAB_HOST/datadir-move
    in_verify_mounts db
    in_datadir_path_ok "$to" || in_die "datadir $to: want $LAB_DEFAULT_DATADIR or a path under /srv"
    from=$(in_configured_datadir)
    in_datadir_path_ok "$from" || in_die "the configured datadir $from is none the lab made; run reset"
    [[ -d $from ]] || in_die "the configured datadir $from does not exist; run reset"
    vol=$(in_data_volume_target)
    in_stop_mariadb
    pid=$(in_pidfile /run/mysqld/mysqld.pid)
    if [[ -n $pid ]] && in_live_pid "$pid" mariadbd; then in_die "mariadbd $pid did not stop"; fi
    # The data out to the lab root (the machine's disk), then back in at its new place.
    rm -rf --one-file-system "$stage"
    mkdir -p "$stage"
    cp -a "$from/." "$stage/"
    rm -rf "$stage/lost+found"
    if [[ -n $vol ]]; then in_data_volume_umount; fi
    if [[ $from != "$vol" ]]; then in_empty_datadir "$from"; fi
    # A directory the lab made under /srv goes; /var/lib/mysql stays (empty), as the
    # package's own directory does when an administrator moves the data elsewhere.
    if [[ $from != "$LAB_DEFAULT_DATADIR" && $from != "$to" ]]; then rmdir -p "$from" 2>/dev/null || true; fi
    if [[ $layout == mount ]]; then
        in_data_volume_mount "$to"
    else
        install -d -m 755 "$to"
        if mountpoint -q "$to"; then in_die "$to is a mount point"; fi
    fi
    in_empty_datadir "$to"
    cp -a "$stage/." "$to/"
    chown mysql:mysql "$to"
    chmod 755 "$to"
    rm -rf --one-file-system "$stage"
    in_set_datadir_config "$to"
    in_say "datadir: $(in_datadir_show)"
}

# First initialisation of a database host: host keys, datadirs.
in_init_db() {
    in_verify_mounts db
    # Each host gets its own host keys (the copied /etc/ssh has none).
    ssh-keygen -A >>"$LAB_LOG" 2>&1
    in_say "initialising MariaDB datadir"
    # Root logs in through unix_socket, as on Debian. --skip-test-db --disable-log-bin are
    # what the Debian package's own postinst passes: a real host has no `test` database.
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --skip-test-db --disable-log-bin >>"$LAB_LOG" 2>&1 ||
        in_die "mariadb-install-db failed (see $LAB_LOG)"
    in_say "creating PostgreSQL cluster $PG_VERSION/$PG_CLUSTER"
    pg_createcluster "$PG_VERSION" "$PG_CLUSTER" >>"$LAB_LOG" 2>&1 ||
        in_die "pg_createcluster failed (see $LAB_LOG)"
}

# Is this host's init systemd (`lab.sh flavour HOST systemd`)? Then services are units.
in_systemd() { [[ $(cat /proc/1/comm 2>/dev/null) == systemd ]]; }

in_systemctl() {
    timeout 90 systemctl "$@" </dev/null >>"$LAB_LOG" 2>&1 || in_die "systemctl $* failed (see $LAB_LOG)"
}

# Until systemd has finished starting up (the units of multi-user.target: ssh, mariadb,
# postgresql).
in_wait_booted() {
    local state="" i
    # (`is-system-running --wait` answers at once while systemd is still "initializing")
    for ((i = 0; i < 600; i++)); do
        state=$(systemctl is-system-running 2>/dev/null) || true
        case $state in initializing | starting | "") sleep 0.2 ;; *) break ;; esac
    done
    case $state in
    running) ;;
    degraded)
        in_say "systemd is up, degraded: $(systemctl --failed --no-legend --plain | awk '{ print $1 }' | paste -sd' ')"
        ;;
    *) in_die "systemd did not finish starting up (${state:-no answer})" ;;
    esac
}

in_start_sshd() {
    in_sshd_up && return 0
    if in_systemd; then in_systemctl start ssh.service; return 0; fi
    local pid
    pid=$(in_pidfile /run/sshd.pid)
    if [[ -n $pid ]] && in_live_pid "$pid" sshd; then kill -TERM "$pid" 2>/dev/null || true; sleep 0.2; fi
    rm -f /run/sshd.pid
    install -d -m 755 /run/sshd
    # Default config from the host's /etc/ssh; -E only sends the log to a file (there is no
    # syslog in the lab).
    /usr/sbin/sshd -E /var/log/sshd.log || in_die "sshd did not start (see /var/log/sshd.log in $LAB_HOST)"
}

in_start_mariadb() {
    in_mariadb_up && return 0
    local pid
    pid=$(in_pidfile /run/mysqld/mysqld.pid)
    # Running but not (yet) answering, e.g. still recovering: leave it; the caller waits.
    [[ -n $pid ]] && in_live_pid "$pid" mariadbd && return 0
    if in_systemd; then
        systemctl reset-failed mariadb.service >/dev/null 2>&1 || true
        in_systemctl start mariadb.service
        return 0
    fi
    install -d -m 755 -o mysql -g mysql /run/mysqld
    rm -f /run/mysqld/mysqld.pid
    # Without systemd, `service` runs /etc/init.d/mariadb (our /run has no /run/systemd).
    service mariadb start </dev/null >>"$LAB_LOG" 2>&1 || in_die "service mariadb start failed (see $LAB_LOG)"
}

in_pg_pidfile() { printf '/var/lib/postgresql/%s/%s/postmaster.pid' "$PG_VERSION" "$PG_CLUSTER"; }

in_start_pg() {
    in_pg_up && return 0
    local pidfile pid
    pidfile=$(in_pg_pidfile)
    pid=$(in_pidfile "$pidfile")
    [[ -n $pid ]] && in_live_pid "$pid" postgres && return 0
    # A stale postmaster.pid whose PID now belongs to nothing (or to a zombie, or to another
    # host) would make the postmaster refuse to start.
    [[ -n $pid ]] && rm -f "$pidfile"
    if in_systemd; then
        systemctl reset-failed "postgresql@$PG_VERSION-$PG_CLUSTER.service" >/dev/null 2>&1 || true
        in_systemctl start "postgresql@$PG_VERSION-$PG_CLUSTER.service"
        return 0
    fi
    install -d -m 2775 -o postgres -g postgres /run/postgresql
    pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" start </dev/null >>"$LAB_LOG" 2>&1 ||
        in_die "pg_ctlcluster $PG_VERSION $PG_CLUSTER start failed (see $LAB_LOG)"
}

# Runs the given functions at the same time and fails if any of them did. (pg_ctlcluster
# start alone takes about 2s, mostly its own polling; MariaDB's init script about 1s.)
in_together() {
    local f bg=() rc=0 pid
    for f; do
        "$f" &
        bg+=("$!")
    done
    for pid in "${bg[@]}"; do wait "$pid" || rc=1; done
    return $rc
}

in_start_services() {
    local what=${1:-all}
    in_start_sshd
    [[ $what == sshd ]] && return 0
    in_together in_start_mariadb in_start_pg
}

# Waits until mariadbd/postgres of this host have exited (they are this host's processes
# only: in_live_pid checks the network namespace).
in_wait_gone() {
    local pidfile=$1 comm=$2 secs=$3 pid i
    pid=$(in_pidfile "$pidfile")
    [[ -n $pid ]] || return 0
    for ((i = 0; i < secs * 10; i++)); do
        in_live_pid "$pid" "$comm" || return 0
        sleep 0.1
    done
    return 1
}

in_stop_mariadb() {
    local pid
    pid=$(in_pidfile /run/mysqld/mysqld.pid)
    [[ -n $pid ]] && in_live_pid "$pid" mariadbd || return 0
    # Debian's init script stops the server with `mariadb-admin --defaults-file=debian.cnf
    # shutdown`, i.e. as root over unix_socket. If that login no longer works, it prints
    # "failed!" and leaves the server running (its `killall mariadbd` fallback is never
    # reached: `set -e` ends the script at `log_end_msg 1`). So use `service mariadb stop` only when
    # mariadb-admin can log in, and otherwise signal this host's mariadbd by PID (SIGTERM
    # is a normal shutdown for mariadbd).
    if in_systemd; then
        timeout 60 systemctl stop mariadb.service </dev/null >>"$LAB_LOG" 2>&1 || true
    elif timeout 10 mariadb-admin --defaults-file=/etc/mysql/debian.cnf status >/dev/null 2>&1; then
        timeout 60 service mariadb stop </dev/null >>"$LAB_LOG" 2>&1 || true
    fi
    if in_live_pid "$pid" mariadbd; then
        kill -TERM "$pid" 2>/dev/null || true
        in_wait_gone /run/mysqld/mysqld.pid mariadbd 20 || in_say "mariadbd $pid did not stop"
    fi
}

in_stop_pg() {
    local pidfile pid
    pidfile=$(in_pg_pidfile)
    pid=$(in_pidfile "$pidfile")
    [[ -n $pid ]] && in_live_pid "$pid" postgres || return 0
    if in_systemd; then
        timeout 30 systemctl stop "postgresql@$PG_VERSION-$PG_CLUSTER.service" </dev/null >>"$LAB_LOG" 2>&1 || true
    else
        timeout 30 pg_ctlcluster "$PG_VERSION" "$PG_CLUSTER" stop -m fast </dev/null >>"$LAB_LOG" 2>&1 || true
    fi
    if in_live_pid "$pid" postgres; then
        kill -INT "$pid" 2>/dev/null || true # the postmaster's "fast shutdown" signal
        in_wait_gone "$pidfile" postgres 20 || in_say "postgres $pid did not stop"
    fi
}

in_stop_sshd() {
    local pid
    pid=$(in_pidfile /run/sshd.pid)
    [[ -n $pid ]] && in_live_pid "$pid" sshd || return 0
    if in_systemd; then timeout 30 systemctl stop ssh.service </dev/null >>"$LAB_LOG" 2>&1 || true; fi
    in_live_pid "$pid" sshd || return 0
    kill -TERM "$pid" 2>/dev/null || true
    in_wait_gone /run/sshd.pid sshd 5 || true
}

# Tests may freeze a server with SIGSTOP (a hung host); let everything of this host run
# again so that it can stop cleanly instead of running into timeouts.
in_continue_all() {
    local p
    for p in /proc/[0-9]*; do
        in_live_pid "${p#/proc/}" && kill -CONT "${p#/proc/}" 2>/dev/null
    done
    return 0
}

in_stop_services() {
    local what=${1:-all}
    in_continue_all
    in_together in_stop_mariadb in_stop_pg
    [[ $what == all ]] && in_stop_sshd
    return 0
}

# After the first start, /etc/mysql/debian-start runs mariadb-upgrade in the background;
# let it finish before the pristine snapshot is taken.
in_wait_debian_start() {
    local i p busy
    for ((i = 0; i < 600; i++)); do
        busy=0
        for p in /proc/[0-9]*; do
            case $(cat "$p/comm" 2>/dev/null) in
            debian-start | mariadb-upgrade | mysql_upgrade | mariadb-check | mysqlcheck)
                in_live_pid "${p#/proc/}" && busy=1 && break
                ;;
            esac
        done
        [[ $busy == 0 ]] && return 0
        sleep 0.1
    done
    in_say "warning: debian-start still running after 60s"
}

# Pristine copies, taken once with the databases stopped.
in_snapshot() {
    local p=$LAB_ROOT/$LAB_HOST/pristine
    in_verify_mounts db
    rm -rf --one-file-system "$p.tmp"
    mkdir -p "$p.tmp"
    cp -a /etc/mysql "$p.tmp/etc-mysql"
    cp -a /var/lib/mysql "$p.tmp/var-lib-mysql"
    rm -rf "$p.tmp/var-lib-mysql/lost+found" # the volume's own, not data
    cp -a /etc/postgresql "$p.tmp/etc-postgresql"
    cp -a /var/lib/postgresql "$p.tmp/var-lib-postgresql"
    mv "$p.tmp" "$p"
}

# Empties directories in place (they are mount points, so they cannot be removed).
in_empty_dir() {
    local d
    for d; do
        find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf --one-file-system {} +
    done
}

# Restores a mount-point directory from a pristine copy, contents and the directory's own
# owner and mode.
in_restore_dir() {
    local from=$1 to=$2
    in_empty_dir "$to"
    cp -a "$from/." "$to/"
    chown --reference="$from" "$to"
    chmod --reference="$from" "$to"
}

# A login that is not root, with passwordless sudo (ha-setup's `sudo -n` path) and a
# password (for password authentication): the lab's own, printed by `lab.sh env`.
in_admin_user() {
    local home=/var/lib/ha-admin
    id ha-admin >/dev/null 2>&1 ||
        useradd --home-dir "$home" --no-create-home --shell /bin/sh ha-admin >>"$LAB_LOG" 2>&1
    printf 'ha-admin:%s\n' "$LAB_ADMIN_PASSWORD" | chpasswd
    install -d -m 755 -o ha-admin -g ha-admin "$home"
    install -d -m 700 -o ha-admin -g ha-admin "$home/.ssh"
    install -m 600 -o ha-admin -g ha-admin "$LAB_ROOT/keys/authorized_keys" "$home/.ssh/authorized_keys"
    install -d -m 755 /etc/sudoers.d
    printf 'ha-admin ALL=(ALL:ALL) NOPASSWD: ALL\n' > /etc/sudoers.d/ha-admin
    chmod 440 /etc/sudoers.d/ha-admin
}

in_reset_common() {
    local role=$1
    in_verify_mounts "$role"
    in_empty_dir /tmp /dev/shm
    # /root/.ssh back to exactly what `up` made (ha-setup may add keys and known_hosts).
    in_empty_dir /root/.ssh
    if [[ $role == db ]]; then
        install -m 600 "$LAB_ROOT/keys/authorized_keys" /root/.ssh/authorized_keys
        in_admin_user
    else
        install -m 600 "$LAB_ROOT/keys/id_ed25519" "$LAB_ROOT/keys/id_rsa" /root/.ssh/
        install -m 644 "$LAB_ROOT/keys/id_ed25519.pub" "$LAB_ROOT/keys/id_rsa.pub" \
            "$LAB_ROOT/known_hosts" /root/.ssh/
    fi
}

# Back to pristine, through the merged view (the overlays stay mounted, and an overlay's
# upper directory must not be written behind its back). All services are stopped and every
# process of the host has been killed before this runs.
in_restore() {
    local p=$LAB_ROOT/$LAB_HOST/pristine
    [[ -d $p/var-lib-mysql && -d $p/var-lib-postgresql ]] || in_die "no pristine snapshot in $p"
    in_reset_common db
    in_restore_dir "$p/etc-mysql" /etc/mysql
    in_restore_dir "$p/etc-postgresql" /etc/postgresql
    # MariaDB's datadir back to the default layout: the data volume on /var/lib/mysql (the
    # configuration, restored above, names no other), nothing left under /srv.
    local t i
    t=$(in_data_volume_target)
    if [[ -n $t && $t != "$LAB_DEFAULT_DATADIR" ]]; then in_data_volume_umount; fi
    in_empty_dir /srv
    for ((i = 0; i < 5; i++)); do
        if [[ -n $(in_data_volume_target) ]] || ! mountpoint -q "$LAB_DEFAULT_DATADIR"; then break; fi
        # Something else mounted on /var/lib/mysql (by a test): off with it.
        umount "$LAB_DEFAULT_DATADIR" || in_die "cannot unmount what is mounted on $LAB_DEFAULT_DATADIR"
    done
    if [[ -z $(in_data_volume_target) ]]; then
        # The plain layout (or none): the directory goes, the volume comes back.
        rm -rf --one-file-system "$LAB_DEFAULT_DATADIR"
        in_data_volume_mount "$LAB_DEFAULT_DATADIR"
    fi
    in_empty_datadir "$LAB_DEFAULT_DATADIR"
    [[ -d $LAB_DEFAULT_DATADIR/lost+found ]] || (cd "$LAB_DEFAULT_DATADIR" && mklost+found >/dev/null)
    cp -a "$p/var-lib-mysql/." "$LAB_DEFAULT_DATADIR/"
    chown --reference="$p/var-lib-mysql" "$LAB_DEFAULT_DATADIR"
    chmod --reference="$p/var-lib-mysql" "$LAB_DEFAULT_DATADIR"
    shopt -s nullglob
    # What ha-setup may leave next to the datadirs (/var/lib/mysql.old-..., main.*).
    rm -rf --one-file-system /var/lib/mysql.* /var/lib/postgresql \
        /var/lib/ha-setup* /etc/ha-setup* /var/log/ha-setup*
    cp -a "$p/var-lib-postgresql" /var/lib/postgresql
    shopt -u nullglob
    in_empty_dir /var/log/mysql /var/log/postgresql
    rm -f /var/log/sshd.log
    # Stale pid files and sockets (processes were killed, maybe with SIGKILL).
    in_empty_dir /run/mysqld /run/postgresql
    rm -f /run/sshd.pid
}

in_reset_operator() { in_reset_common operator; }

INNER_FUNCS=(in_guard in_say in_die in_live_pid in_pidfile in_sshd_up in_mariadb_up in_pg_up
    in_check in_verify_mounts in_setup_mounts in_init_db in_start_sshd in_start_mariadb
    in_pg_pidfile in_start_pg in_together in_start_services in_wait_gone in_stop_mariadb in_stop_pg
    in_stop_sshd in_continue_all in_stop_services in_wait_debian_start in_snapshot in_empty_dir
    in_restore_dir in_admin_user in_reset_common in_restore in_reset_operator
    in_data_volume_dev in_data_volume_target in_data_volume_mount in_data_volume_umount
    in_datadir_path_ok in_configured_datadir in_datadir_show in_empty_datadir
    in_set_datadir_config in_datadir_set in_systemd in_systemctl in_wait_booted)

# ---------------------------------------------------------------------------------------
# Lab state
# ---------------------------------------------------------------------------------------

# Prints "absent", "complete", or "partial: <what is missing/extra>".
lab_state() {
    local present=() missing=() h t
    for h in "$SWITCH" "${HOSTS[@]}"; do
        if is_mounted "/run/netns/$(netns_of "$h")"; then present+=("netns $h"); else missing+=("netns $h"); fi
    done
    if is_mounted "$NSDIR"; then present+=("$NSDIR"); else missing+=("$NSDIR"); fi
    for h in "${HOSTS[@]}"; do
        for t in mnt uts pid; do
            if is_mounted "$NSDIR/$h.$t"; then present+=("$h.$t"); else missing+=("$h.$t"); fi
        done
    done
    [[ -e $LAB_ROOT ]] && present+=("$LAB_ROOT")
    [[ -n $(lab_loop_devices) ]] && present+=("loop devices $(lab_loop_devices | tr '\n' ' ')")
    for t in "/sys/fs/cgroup/$NAME" "/sys/fs/cgroup/systemd/$NAME" "/sys/fs/cgroup/unified/$NAME"; do
        [[ -d $t ]] && present+=("cgroup $t")
    done
    [[ -e $LAB_ROOT/.complete ]] || missing+=("$LAB_ROOT/.complete")
    # Leftovers that are not mounted (e.g. after a reboot: /run is not a tmpfs here).
    for h in "$SWITCH" "${HOSTS[@]}"; do
        [[ -e /run/netns/$(netns_of "$h") ]] && present+=("stale /run/netns/$(netns_of "$h")")
    done
    [[ -e $RUN_DIR ]] && present+=("$RUN_DIR")
    if [[ ${#present[@]} -eq 0 ]]; then
        echo absent
    elif [[ ${#missing[@]} -eq 0 ]]; then
        echo complete
    else
        echo "partial: missing ${missing[*]}"
    fi
}

host_usable() {
    local h=$1
    is_mounted "/run/netns/$(netns_of "$h")" && is_mounted "$NSDIR/$h.mnt" && is_mounted "$NSDIR/$h.uts" &&
        is_mounted "$NSDIR/$h.pid"
}

# The PID (as the machine sees it) of host H's init, PID 1 of its PID namespace (once it is
# ha-lab-init or systemd: not while BOOT_SH still runs); fails if there is none (then
# nothing can enter the host's PID namespace any more: fork fails).
init_pid() {
    local h=$1 pidns
    is_mounted "$NSDIR/$h.pid" || return 1
    pidns="pid:[$(stat -L -c %i "$NSDIR/$h.pid")]"
    ns_members "$pidns" | proc_filter init | head -n 1 | grep .
}

# PIDs of the processes whose mount or PID namespace is one of the given (e.g. mnt:[4026...]),
# one a line. One `find` over /proc, not a readlink per process: the machine may run
# hundreds of processes, and `down` and `reset` ask again and again while they wait.
ns_members() {
    # (find fails for the processes that end while it looks: not an error here)
    { find /proc/[0-9]*/ns -maxdepth 1 \( -name mnt -o -name pid \) -printf '%h %l\n' 2>/dev/null || true; } |
        awk -v a="$1" -v b="${2:-}" '$2 == a || (b != "" && $2 == b) { split($1, f, "/"); print f[3] }' |
        sort -un
}

# Filters PIDs (stdin, one a line) by their /proc/PID/status, in one pass: with MODE `init`,
# only the inits of lab hosts (PID 1 of a PID namespace, named ha-lab-init or systemd);
# with `procs`, every live process but those inits, ourselves, and with EXCEPT_REAPERS the
# ha-lab-reaper processes. Gone and zombie processes are never printed.
proc_filter() {
    local mode=$1 except_reapers=${2:-} files=() pid
    while read -r pid; do files+=("/proc/$pid/status"); done
    [[ ${#files[@]} -gt 0 ]] || return 0
    { grep -H -E '^(Name|State|NSpid):' "${files[@]}" 2>/dev/null || true; } |
        awk -F '[:\t ]+' -v mode="$mode" -v self="$$" -v sh2="$BASHPID" -v rr="$except_reapers" '
            { split($1, f, "/"); p = f[3]; seen[p] = 1 }
            $2 == "Name" { name[p] = $3 }
            $2 == "State" { state[p] = $3 }
            $2 == "NSpid" { init[p] = (NF > 3 && $NF == 1) }
            END {
                for (p in seen) {
                    if (state[p] == "Z" || state[p] == "X") continue
                    if (mode == "init") {
                        if (init[p] && (name[p] == "ha-lab-init" || name[p] == "systemd")) print p
                        continue
                    }
                    if (init[p] || p == self || p == sh2) continue
                    if (rr != "" && name[p] == "ha-lab-reaper") continue
                    print p
                }
            }' | sort -n
}

# Loop devices attached to files under the lab root (the data volumes), one a line.
lab_loop_devices() {
    losetup -n -l --raw -O NAME,BACK-FILE 2>/dev/null |
        awk -v r="$LAB_ROOT/" 'index($2, r) == 1 { print $1 }'
}

require_complete() {
    local state
    state=$(lab_state)
    [[ $state == complete ]] || die "the lab is not up ($state); run: $SELF up"
}

link_is_up() {
    ip -n "$(netns_of "$SWITCH")" -j link show "vp-$1" 2>/dev/null |
        jq -e '.[0].flags | index("UP") != null' >/dev/null
}

# ---------------------------------------------------------------------------------------
# Processes of the lab
# ---------------------------------------------------------------------------------------

# PIDs of the processes in host H: members of its network namespace (`ip netns pids`) and,
# for hosts, of its mount or PID namespace (someone may have entered only one of them). All
# of these can only have been started through the lab. With EXCEPT_REAPERS, ha-lab-reaper
# processes are left out: they must outlive the processes they reap. The host's init (PID 1
# of its PID namespace) is never listed: it must outlive everything else in the host, and
# only `down` ends it (kill_inits).
lab_pids() {
    local h=$1 except_reapers=${2:-} mntns="" pidns=""
    if [[ $h != "$SWITCH" ]] && is_mounted "$NSDIR/$h.mnt"; then
        mntns="mnt:[$(stat -L -c %i "$NSDIR/$h.mnt")]"
        if is_mounted "$NSDIR/$h.pid"; then pidns="pid:[$(stat -L -c %i "$NSDIR/$h.pid")]"; fi
    fi
    {
        ip netns pids "$(netns_of "$h")" 2>/dev/null || true
        if [[ -n $mntns ]]; then ns_members "$mntns" "$pidns"; fi
    } | sort -un | proc_filter procs "$except_reapers"
}

collect_pids() {
    local except_reapers=$1 h
    shift
    for h; do lab_pids "$h" "$except_reapers"; done
}

# signal_and_wait EXCEPT_REAPERS GRACE HOST...: after GRACE tenths of a second without
# signals, SIGTERM, wait up to 5s, SIGKILL, wait up to 5s.
signal_and_wait() {
    local except_reapers=$1 grace=$2 sig i pids
    shift 2
    for ((i = 0; i < grace; i++)); do
        mapfile -t pids < <(collect_pids "$except_reapers" "$@")
        [[ ${#pids[@]} -eq 0 ]] && return 0
        sleep 0.1
    done
    for sig in TERM KILL; do
        mapfile -t pids < <(collect_pids "$except_reapers" "$@")
        [[ ${#pids[@]} -eq 0 ]] && return 0
        kill "-$sig" "${pids[@]}" 2>/dev/null || true
        # A stopped (SIGSTOP) process only acts on SIGTERM once it runs again.
        [[ $sig == TERM ]] && { kill -CONT "${pids[@]}" 2>/dev/null || true; }
        for ((i = 0; i < 50; i++)); do
            sleep 0.1
            mapfile -t pids < <(collect_pids "$except_reapers" "$@")
            [[ ${#pids[@]} -eq 0 ]] && return 0
        done
    done
    die "processes of the lab would not die: ${pids[*]}"
}

# Every process of the given hosts but their inits: first all but the reapers, then the
# reapers, which normally exit by themselves as soon as nothing is left below them.
kill_lab_procs() {
    signal_and_wait 1 0 "$@"
    signal_and_wait "" 20 "$@"
}

# Ends the given hosts' inits (SIGKILL from the machine, which also kills anything still
# left in their PID namespaces) and waits until they and their `unshare` parents are gone.
kill_inits() {
    local h pid procs=() i left
    for h; do
        if pid=$(init_pid "$h"); then procs+=("$pid"); fi
        if [[ -r $RUN_DIR/$h.unshare ]]; then
            read -r pid <"$RUN_DIR/$h.unshare" || true
            [[ -n $pid ]] && procs+=("$pid")
        fi
    done
    [[ ${#procs[@]} -gt 0 ]] || return 0
    for h; do
        if pid=$(init_pid "$h"); then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    # The unshare parents (in the machine's namespaces) exit once their init has; they are
    # then zombies until the machine's PID 1 reaps them.
    for ((i = 0; i < 100; i++)); do
        left=0
        for pid in "${procs[@]}"; do
            case $(cat "/proc/$pid/comm" 2>/dev/null) in unshare | ha-lab-init | systemd) ;; *) continue ;; esac
            [[ $(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) != Z ]] && left=1
        done
        [[ $left == 0 ]] && return 0
        sleep 0.1
    done
    log "warning: lab inits or their unshare parents still there: ${procs[*]}"
}

# ---------------------------------------------------------------------------------------
# Building the lab
# ---------------------------------------------------------------------------------------

make_keys() {
    local k=$LAB_ROOT/keys
    install -d -m 700 "$k"
    [[ -e $k/id_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C ha-lab -f "$k/id_ed25519"
    [[ -e $k/id_rsa ]] || ssh-keygen -q -t rsa -b 3072 -N '' -C ha-lab -f "$k/id_rsa"
    cat "$k/id_ed25519.pub" "$k/id_rsa.pub" >"$k/authorized_keys"
    chmod 600 "$k/authorized_keys"
}

# `ip netns add` makes /run/netns a mount point if it is not one yet; remember whether
# that was a lab, so that the last lab's `down` can put it back as it was.
add_switch_netns() {
    if ! is_mounted /run/netns && [[ ! -e /run/netns ]]; then
        touch "$MADE_RUN_NETNS"
    fi
    ip netns add "$1"
}

make_network() {
    local sw h
    sw=$(netns_of "$SWITCH")
    with_machine_lock add_switch_netns "$sw"
    ip -n "$sw" link set lo up
    ip -n "$sw" link add br0 type bridge
    ip -n "$sw" link set br0 up
    for h in "${HOSTS[@]}"; do
        ip netns add "$(netns_of "$h")"
        ip -n "$(netns_of "$h")" link set lo up
        # Both ends are created directly in lab namespaces: the switch end in ha-lab-switch,
        # the host end (eth0) in the host's namespace. Nothing passes through the root ns.
        ip -n "$sw" link add "vp-$h" type veth peer name eth0 netns "$(netns_of "$h")"
        ip -n "$sw" link set "vp-$h" master br0
        ip -n "$sw" link set "vp-$h" up
        ip -n "$(netns_of "$h")" addr add "${ADDR[$h]}/$PREFIX_LEN" dev eth0
        ip -n "$(netns_of "$h")" link set eth0 up
    done
}

make_namespaces() {
    local h
    mkdir -p "$NSDIR"
    # Persistent mount namespaces can only be bind-mounted onto a private mount.
    if ! is_mounted "$NSDIR"; then
        mount --bind "$NSDIR" "$NSDIR"
        mount --make-private "$NSDIR"
    fi
    for h in "${HOSTS[@]}"; do
        touch "$NSDIR/$h.mnt" "$NSDIR/$h.uts"
        unshare --mount="$NSDIR/$h.mnt" --uts="$NSDIR/$h.uts" --propagation private true
    done
    for h in "${HOSTS[@]}"; do start_init "$h"; done
    for h in "${HOSTS[@]}"; do wait_init "$h"; done
}

# How this machine mounts cgroups: hybrid (v1 with a name=systemd hierarchy, and cgroup2
# on /sys/fs/cgroup/unified, as here), unified (cgroup2 only), or none that systemd can use.
cgroup_mode() {
    case $(stat -f -c %T /sys/fs/cgroup 2>/dev/null) in
    cgroup2fs) echo unified ;;
    tmpfs) if [[ -d /sys/fs/cgroup/systemd && -d /sys/fs/cgroup/unified ]]; then echo hybrid; else echo none; fi ;;
    *) echo none ;;
    esac
}

# Host H's cgroups on the machine, one a line (systemd flavour only): a subtree per host
# under the lab's (ha-lab), which the host sees as its cgroup root.
host_cgroups() {
    case $(cgroup_mode) in
    unified) echo "/sys/fs/cgroup/$NAME/$1" ;;
    hybrid) printf '%s\n' "/sys/fs/cgroup/systemd/$NAME/$1" "/sys/fs/cgroup/unified/$NAME/$1" ;;
    esac
}

# Removes host H's (empty) cgroups once nothing runs in them; with no host, the lab's
# parents too.
remove_cgroups() {
    local d
    for d in "/sys/fs/cgroup/$NAME" "/sys/fs/cgroup/systemd/$NAME" "/sys/fs/cgroup/unified/$NAME"; do
        [[ -n ${1:-} ]] && d+=/$1
        [[ -d $d ]] || continue
        find "$d" -depth -type d -exec rmdir {} + 2>/dev/null || log "warning: could not remove cgroup $d"
    done
}

# Host H's PID namespace and its init (BOOT_SH, then FLAVOUR's init), which joins the host's
# network, mount and UTS namespaces. `unshare --fork` stays behind in the machine's
# namespaces as the init's parent (it only waits for it), in a session of its own, with
# none of our descriptors. For systemd, it first moves into the host's cgroups and makes a
# cgroup namespace there.
start_init() {
    local h=$1 flavour=${2:-plain} mode=none cgroups=() launcher
    touch "$NSDIR/$h.pid"
    launcher=(unshare --pid="$NSDIR/$h.pid" --fork)
    if [[ $flavour == systemd ]]; then
        mode=$(cgroup_mode)
        [[ $mode != none ]] || die "$h: this machine mounts no cgroup hierarchy that systemd could use"
        mapfile -t cgroups < <(host_cgroups "$h")
        mkdir -p "${cgroups[@]}"
        # shellcheck disable=SC2016 # expanded by sh
        launcher=(sh -c 'n=$1; shift; while [ "$n" -gt 0 ]; do echo $$ >"$1/cgroup.procs"; shift; n=$((n - 1)); done; exec "$@"'
            ha-lab-cgroup "${#cgroups[@]}" "${cgroups[@]}" unshare --pid="$NSDIR/$h.pid" --cgroup --fork)
    fi
    # The init lives as long as the host: it must hold none of the caller's descriptors (a
    # test's flock, or the pipe of a `$(lab.sh up)`, would stay held or open until `down`).
    (
        close_inherited_fds
        exec setsid "${launcher[@]}" -- \
            nsenter --net="/run/netns/$(netns_of "$h")" --mount="$NSDIR/$h.mnt" --uts="$NSDIR/$h.uts" -- \
            env -i PATH="$CLEAN_PATH" LANG=C.UTF-8 LAB_HOST="$h" bash -c "$BOOT_SH" ha-lab-boot "$flavour" "$mode" "$INIT_PL" \
            </dev/null >>"$RUN_DIR/$h.init.log" 2>&1
    ) &
    echo "$!" >"$RUN_DIR/$h.unshare"
}

# Closes, in this (sub)shell, every descriptor above stderr.
close_inherited_fds() {
    local fd
    for fd in /proc/"$BASHPID"/fd/*; do
        fd=${fd##*/}
        [[ $fd -gt 2 ]] || continue
        eval "exec $fd>&-" 2>/dev/null || true
    done
}

wait_init() {
    local h=$1 i
    for ((i = 0; i < 200; i++)); do
        init_pid "$h" >/dev/null && return 0
        sleep 0.05
    done
    tail -n 20 "$RUN_DIR/$h.init.log" >&2 2>/dev/null || true
    die "$h: its init did not start"
}

# plain or systemd: what runs as host H's init.
flavour_of() {
    local pid
    pid=$(init_pid "$1") || { echo none; return 0; }
    case $(cat "/proc/$pid/comm" 2>/dev/null) in
    systemd) echo systemd ;;
    *) echo plain ;;
    esac
}

# Restarts database host H into FLAVOUR, like a reboot: services stopped, every process
# ended, the init too, then a new PID namespace with a new init. Files, mounts (the data
# volume) and the network stay; /run is fresh.
reboot_host() {
    local h=$1 flavour=$2
    ns_fn "$h" in_stop_services all || log "$h: graceful stop failed; killing"
    # Under systemd, ending the init's children one by one would have it start them again:
    # end the init first (which ends every process of its PID namespace), then whatever is
    # left in the host's other namespaces.
    if [[ $(flavour_of "$h") == systemd ]]; then kill_inits "$h"; fi
    kill_lab_procs "$h"
    kill_inits "$h"
    remove_cgroups "$h"
    if is_mounted "$NSDIR/$h.pid"; then umount "$NSDIR/$h.pid"; fi
    start_init "$h" "$flavour"
    wait_init "$h"
    if [[ $flavour == systemd ]]; then ns_fn "$h" in_wait_booted; fi
}

write_hosts_files() {
    local h r=$LAB_ROOT/$1
    {
        printf '127.0.0.1\tlocalhost\n'
        printf '::1\t\tlocalhost ip6-localhost ip6-loopback\n'
        printf 'ff02::1\t\tip6-allnodes\nff02::2\t\tip6-allrouters\n'
        for h in "${HOSTS[@]}"; do printf '%s\t%s\n' "${ADDR[$h]}" "$h"; done
    } >"$r/hosts"
    printf '%s\n' "$1" >"$r/hostname"
    chmod 644 "$r/hosts" "$r/hostname"
}

# The directories that get bind-mounted into host H (created from the machine's side; they
# are bind sources, not overlay upper directories).
prepare_host_dirs() {
    local h=$1 r=$LAB_ROOT/$1 name
    install -d -m 755 "$r"
    local spec dir
    for spec in /etc:etc /root:root $(is_db_host "$h" && echo /var/lib:varlib /var/log:varlog); do
        dir=${spec%%:*} name=${spec##*:}
        install -d -m 755 "$r/ovl/$name" "$r/ovl/$name/upper" "$r/ovl/$name/work"
        # The overlay's root directory takes owner and mode from the upper directory
        # (/root must stay 0700 as on the machine).
        chown --reference="$dir" "$r/ovl/$name/upper"
        chmod --reference="$dir" "$r/ovl/$name/upper"
    done
    # root's shell files as a fresh Debian install has them (base-files), over whatever
    # this machine's root keeps in its own: sshd runs every command through root's shell,
    # which reads ~/.bashrc, and a development machine's (pyenv, cargo) would add a second
    # or so to each command, which no real host does.
    install -m 644 /usr/share/base-files/dot.bashrc "$r/ovl/root/upper/.bashrc"
    install -m 644 /usr/share/base-files/dot.profile "$r/ovl/root/upper/.profile"
    install -d -m 1777 "$r/tmp"
    install -d -m 700 "$r/root-ssh"
    : >"$r/lab.log"
    write_hosts_files "$h"
    if is_db_host "$h"; then
        cp -a /etc/mysql "$r/etc-mysql"
        cp -a /etc/ssh "$r/etc-ssh"
        rm -f "$r/etc-ssh"/ssh_host_*
        install -d -m 755 -o postgres -g postgres "$r/etc-postgresql"
        install -d -m 2750 -o mysql -g adm "$r/log-mysql"
        install -d -m 1775 -o root -g postgres "$r/log-postgresql"
        install -d -m 755 "$r/srv"
        install -m 600 "$LAB_ROOT/keys/authorized_keys" "$r/root-ssh/authorized_keys"
        # MariaDB's data volume: a sparse ext4 image (mounted inside the host).
        truncate -s "$DATA_SIZE" "$r/$DATA_IMG"
        mkfs.ext4 -q -F -L mysql-data "$r/$DATA_IMG" ||
            die "mkfs.ext4 on $r/$DATA_IMG failed"
        if [[ $h == tertiary ]]; then
            # The jump host (ssh -J root@tertiary ...): TCP forwarding allowed, said outright
            # rather than left to the default.
            printf '%s\n' "# tests/lab/lab.sh: tertiary is the lab's jump host (ProxyJump)." \
                'AllowTcpForwarding yes' >"$r/etc-ssh/sshd_config.d/ha-lab-jump.conf"
        fi
    fi
}

write_known_hosts() {
    local h pub type key _
    {
        for h in "${DB_HOSTS[@]}"; do
            for pub in "$LAB_ROOT/$h/etc-ssh"/ssh_host_*_key.pub; do
                read -r type key _ <"$pub"
                printf '%s %s %s\n' "${ADDR[$h]}" "$type" "$key"
                printf '%s %s %s\n' "$h" "$type" "$key"
            done
        done
    } >"$LAB_ROOT/known_hosts.tmp"
    chmod 644 "$LAB_ROOT/known_hosts.tmp"
    mv "$LAB_ROOT/known_hosts.tmp" "$LAB_ROOT/known_hosts"
}

# Waits until the services of database host H answer.
wait_ready() {
    local h=$1 secs=${2:-120} state="" deadline
    deadline=$((SECONDS + secs))
    while ((SECONDS < deadline)); do
        state=$(ns_fn "$h" in_check 2>/dev/null) || true
        [[ $state == "sshd=up mariadb=up postgresql=up" ]] && return 0
        sleep 0.3
    done
    log "$h: not ready after ${secs}s: $state"
    log "$h: last lines of $LAB_ROOT/$h/lab.log:"
    tail -n 30 "$LAB_ROOT/$h/lab.log" >&2 || true
    return 1
}

start_services() {
    local h=$1 what=${2:-all}
    ns_fn_reaped "$h" in_start_services "$what" || {
        log "$h: starting services failed; last lines of $LAB_ROOT/$h/lab.log:"
        tail -n 30 "$LAB_ROOT/$h/lab.log" >&2 || true
        return 1
    }
}

# First build of database host H (runs in the background, one per host).
build_db_host() {
    local h=$1
    ns_fn "$h" in_init_db
    ns_fn "$h" in_admin_user
    start_services "$h"
    wait_ready "$h"
    # Pristine snapshot: with the databases stopped, after one clean start (so the copy
    # already has what a first start writes, and every reset starts fast).
    ns_fn "$h" in_wait_debian_start
    ns_fn "$h" in_stop_services databases
    ns_fn "$h" in_snapshot
    start_services "$h"
    wait_ready "$h"
    log "$h: up"
}

# Runs FUNC HOST for each host in parallel; fails if any did. (Three database hosts on two
# cores still gain: much of a build or reset is waiting, for init scripts and pg_ctlcluster.)
run_parallel() {
    local fn=$1 h rc=0
    shift
    local -A pids=()
    for h; do
        "$fn" "$h" &
        pids[$h]=$!
    done
    for h; do
        wait "${pids[$h]}" || { log "$h: $fn failed"; rc=1; }
    done
    return $rc
}

verify_ssh() {
    local h out
    for h in "${DB_HOSTS[@]}"; do
        out=$(ssh_cmd "$h" hostname </dev/null) || die "ssh to $h from the operator failed"
        [[ $out == "$h" ]] || die "ssh to $h answered with hostname '$out'"
    done
}

ensure_db_host() {
    local h=$1 state
    state=$(ns_fn "$h" in_check 2>/dev/null) || true
    if [[ $state != "sshd=up mariadb=up postgresql=up" ]]; then
        log "$h: ${state:-not answering}: starting what is down"
        start_services "$h"
    fi
    wait_ready "$h"
}

# ---------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------

cmd_up() {
    take_lock
    local t0=$SECONDS state h
    with_machine_lock ensure_packages
    state=$(lab_state)
    case $state in
    complete)
        log "the lab exists: checking it"
        for h in "${HOSTS[@]}"; do
            init_pid "$h" >/dev/null || die "host $h has lost its init (PID 1 of its PID namespace); run: $SELF down && $SELF up"
            ns_fn "$h" in_verify_mounts "$(is_db_host "$h" && echo db || echo operator)" ||
                die "host $h is broken; run: $SELF down && $SELF up"
        done
        for h in "${HOSTS[@]}"; do
            link_is_up "$h" || { log "healing the cut link of $h"; ip -n "$(netns_of "$SWITCH")" link set "vp-$h" up; }
        done
        run_parallel ensure_db_host "${DB_HOSTS[@]}" || die "services did not come up"
        verify_ssh
        log "the lab is up (checked in $((SECONDS - t0))s)"
        return 0
        ;;
    absent) ;;
    *) die "a half-built or stale lab is in the way ($state); run: $SELF down, then $SELF up" ;;
    esac

    if [[ -e $LAB_ROOT ]]; then die "$LAB_ROOT exists; remove it or choose another HA_LAB_ROOT"; fi
    log "building the lab in $LAB_ROOT"
    install -d -m 700 "$LAB_ROOT"
    touch "$LAB_ROOT/.ha-lab-root" # down only ever removes a directory carrying this mark
    install -d -m 755 "$RUN_DIR"
    make_keys
    make_network
    make_namespaces
    for h in "${HOSTS[@]}"; do
        prepare_host_dirs "$h"
        ns_fn "$h" in_setup_mounts "$(is_db_host "$h" && echo db || echo operator)"
    done
    run_parallel build_db_host "${DB_HOSTS[@]}" ||
        die "building the database hosts failed; look at $LAB_ROOT/*/lab.log, then run: $SELF down"
    write_known_hosts
    ns_fn operator in_reset_operator
    ns_fn operator in_verify_mounts operator
    verify_ssh
    touch "$LAB_ROOT/.complete"
    log "the lab is up (built in $((SECONDS - t0))s)"
}

# /run/netns back as it was before the first lab, once no lab has a namespace there.
remove_run_netns() {
    if [[ -e $MADE_RUN_NETNS && -d /run/netns && -z $(ls -A /run/netns) ]]; then
        if is_mounted /run/netns; then umount /run/netns; fi
        rmdir /run/netns
        rm -f "$MADE_RUN_NETNS"
    fi
}

cmd_down() {
    take_lock
    local t0=$SECONDS state h t
    state=$(lab_state)
    if [[ $state == absent ]]; then
        log "nothing to remove"
        return 0
    fi
    # Graceful stops first (in parallel), then whatever is left gets SIGTERM and SIGKILL.
    local stoppable=()
    for h in "${DB_HOSTS[@]}"; do host_usable "$h" && stoppable+=("$h"); done
    if [[ ${#stoppable[@]} -gt 0 ]]; then
        run_parallel stop_host_services "${stoppable[@]}" || log "warning: graceful stop failed; killing"
    fi
    # A host under systemd: its init first (systemd would start its helpers again), which
    # ends every process of its PID namespace; its data volume goes with its mount namespace.
    for h in "${DB_HOSTS[@]}"; do
        if [[ $(flavour_of "$h") == systemd ]]; then kill_inits "$h"; fi
    done
    kill_lab_procs "$SWITCH" "${HOSTS[@]}"
    # The data volumes off (which detaches their loop devices), while the hosts' inits still
    # let us in; then the inits.
    for h in "${DB_HOSTS[@]}"; do
        if host_usable "$h" && init_pid "$h" >/dev/null; then
            ns_fn "$h" in_data_volume_umount || log "warning: $h: could not unmount its data volume"
        fi
    done
    kill_inits "${HOSTS[@]}"
    remove_cgroups
    # With no process left inside, unmounting the persistent namespace files destroys the
    # namespaces, and with them every overlay, bind mount and tmpfs of the hosts.
    for h in "${HOSTS[@]}"; do
        for t in mnt uts pid; do
            if is_mounted "$NSDIR/$h.$t"; then umount "$NSDIR/$h.$t"; fi
        done
    done
    detach_loop_devices
    if is_mounted "$NSDIR"; then umount "$NSDIR"; fi
    for h in "$SWITCH" "${HOSTS[@]}"; do
        t=/run/netns/$(netns_of "$h")
        if is_mounted "$t"; then
            ip netns del "$(netns_of "$h")"
        elif [[ -e $t ]]; then
            rm -f "$t" # stale file, not a namespace any more
        fi
    done
    with_machine_lock remove_run_netns
    # Nothing of ours may still be mounted before anything is deleted.
    local ours
    ours=$(awk -v run="$RUN_DIR" -v net="/run/netns/$NAME-" -v root="$LAB_ROOT" '
        $5 == run || index($5, run "/") == 1 || index($5, net) == 1 || $5 == root || index($5, root "/") == 1' \
        /proc/self/mountinfo)
    if [[ -n $ours ]]; then
        printf '%s\n' "$ours" >&2
        die "lab mounts are still there; not deleting files"
    fi
    if [[ -e $LAB_ROOT ]]; then
        [[ -e $LAB_ROOT/.ha-lab-root ]] || die "$LAB_ROOT has no .ha-lab-root mark; not deleting it"
        awk -v r="$LAB_ROOT" '$5 == r || index($5, r "/") == 1 { bad = 1 } END { exit bad }' /proc/self/mountinfo ||
            die "something is mounted under $LAB_ROOT; not deleting it"
        rm -rf --one-file-system "$LAB_ROOT"
    fi
    rm -rf --one-file-system "$RUN_DIR"
    log "the lab is gone (in $((SECONDS - t0))s)"
}

# Detaches the loop devices of the lab's images. Normally there are none left: `mount -o
# loop` sets autoclear, so unmounting a data volume detaches its device. One still in use
# is only marked for autoclear by the kernel: wait a moment for it to go.
detach_loop_devices() {
    local dev devs=() i
    for ((i = 0; i < 50; i++)); do
        mapfile -t devs < <(lab_loop_devices)
        [[ ${#devs[@]} -eq 0 ]] && return 0
        for dev in "${devs[@]}"; do losetup -d "$dev" 2>/dev/null || true; done
        sleep 0.1
    done
    log "warning: loop devices still attached to lab images: ${devs[*]}"
}

stop_host_services() { ns_fn "$1" in_stop_services all; }

reset_host() {
    local h=$1
    if is_db_host "$h" && [[ $(flavour_of "$h") != plain ]]; then
        log "$h: rebooting into the plain flavour"
        reboot_host "$h" plain
    fi
    if is_db_host "$h"; then
        ns_fn "$h" in_stop_services all || log "$h: graceful stop failed; killing"
    fi
    kill_lab_procs "$h"
    # Rewritten in place: they are bind-mounted files (so inside a host, `sed -i /etc/hosts`
    # fails with EBUSY, as in a container).
    write_hosts_files "$h"
    if is_db_host "$h"; then
        : >"$LAB_ROOT/$h/lab.log"
        ns_fn "$h" in_restore
        if [[ $RESET_LAYOUT == plain ]]; then ns_fn "$h" in_datadir_set plain "$DEFAULT_DATADIR"; fi
        start_services "$h"
        wait_ready "$h"
    else
        ns_fn "$h" in_reset_operator
    fi
    log "$h: reset"
}

cmd_reset() {
    local hosts=("$@") h t0=$SECONDS
    [[ ${#hosts[@]} -gt 0 ]] || hosts=("${DB_HOSTS[@]}")
    for h in "${hosts[@]}"; do is_host "$h" || usage; done
    take_lock
    require_complete
    for h in "${hosts[@]}"; do
        ip -n "$(netns_of "$SWITCH")" link set "vp-$h" up
        clear_blocks "$h"
    done
    run_parallel reset_host "${hosts[@]}" || die "reset failed"
    log "reset ${hosts[*]} in $((SECONDS - t0))s"
}

cmd_link() {
    local action=$1 h=$2
    take_lock
    require_complete
    ip -n "$(netns_of "$SWITCH")" link set "vp-$h" "$action"
    if [[ $action == up ]]; then clear_blocks "$h"; fi
}

# ---- One-way blocks: an nftables set of source addresses dropped on input, in the
# receiving host's network namespace only (nsenter --net: nft never touches the machine's).

nft_in() {
    local h=$1
    shift
    nsenter --net="/run/netns/$(netns_of "$h")" -- nft "$@" 9<&-
}

has_block_table() { nft_in "$1" list table inet "$NFT_TABLE" >/dev/null 2>&1; }

# The hosts whose packets TO drops, one a line.
blocked_from() {
    local to=$1 addr h
    has_block_table "$to" || return 0
    nft_in "$to" -j list set inet "$NFT_TABLE" from |
        jq -r '.nftables[] | select(.set) | .set.elem // [] | .[] | strings' |
        while read -r addr; do
            for h in "${HOSTS[@]}"; do
                if [[ ${ADDR[$h]} == "$addr" ]]; then echo "$h"; fi
            done
        done
}

ensure_block_table() {
    local to=$1
    if ! has_block_table "$to"; then
        nft_in "$to" -f - <<EOF
table inet $NFT_TABLE {
    comment "tests/lab/lab.sh block: packets from these addresses are dropped, silently"
    set from { type ipv4_addr; }
    chain input {
        type filter hook input priority filter; policy accept;
        ip saddr @from drop
    }
}
EOF
    fi
}

cmd_block() {
    local from=$1 to=$2
    take_lock
    require_complete
    ensure_block_table "$to"
    nft_in "$to" add element inet "$NFT_TABLE" from "{ ${ADDR[$from]} }"
}

# A transfer cut mid-way: TO's TCP PORT answers as usual until MIB MiB have arrived there
# (every connection counted), then every packet to it gets a TCP reset. In the block table,
# so that `heal TO` and `reset` lift it.
cmd_break_after() {
    local to=$1 port=$2 mib=$3
    take_lock
    require_complete
    ensure_block_table "$to"
    nft_in "$to" add rule inet "$NFT_TABLE" input tcp dport "$port" quota over "$mib" mbytes reject with tcp reset
}

cmd_unblock() {
    local from=$1 to=$2
    take_lock
    require_complete
    if has_block_table "$to" && nft_in "$to" get element inet "$NFT_TABLE" from "{ ${ADDR[$from]} }" >/dev/null 2>&1; then
        nft_in "$to" delete element inet "$NFT_TABLE" from "{ ${ADDR[$from]} }"
    fi
}

# Lifts every block from or to host H.
clear_blocks() {
    local h=$1 o
    if has_block_table "$h"; then nft_in "$h" delete table inet "$NFT_TABLE"; fi
    for o in "${HOSTS[@]}"; do
        [[ $o == "$h" ]] && continue
        if has_block_table "$o" && nft_in "$o" get element inet "$NFT_TABLE" from "{ ${ADDR[$h]} }" >/dev/null 2>&1; then
            nft_in "$o" delete element inet "$NFT_TABLE" from "{ ${ADDR[$h]} }"
        fi
    done
}

# ---- The flavour of a database host: what runs as its init

cmd_flavour() {
    local h=$1 want=${2:-} t0=$SECONDS
    if [[ -z $want ]]; then
        host_usable "$h" || die "the lab is not up; run: $SELF up"
        flavour_of "$h"
        return
    fi
    take_lock
    require_complete
    if [[ $(flavour_of "$h") == "$want" ]]; then
        log "$h: already $want"
        return 0
    fi
    log "$h: rebooting into the $want flavour"
    reboot_host "$h" "$want" || die "$h: rebooting into $want failed; look at $RUN_DIR/$h.init.log, then run: $SELF reset $h"
    start_services "$h" || die "$h: services did not start under $want; run: $SELF reset $h"
    wait_ready "$h" || die "$h: services did not start under $want; run: $SELF reset $h"
    log "$h: $want (in $((SECONDS - t0))s)"
}

# ---- MariaDB's datadir layout

cmd_datadir() {
    local h=$1 layout=${2:-} path=${3:-$DEFAULT_DATADIR} t0=$SECONDS
    if [[ -z $layout ]]; then
        host_usable "$h" || die "the lab is not up; run: $SELF up"
        ns_fn "$h" in_datadir_show
        return
    fi
    take_lock
    require_complete
    log "$h: moving MariaDB's datadir to: $layout $path"
    ns_fn "$h" in_datadir_set "$layout" "$path" || die "$h: changing the datadir layout failed; run: $SELF reset $h"
    start_services "$h" || die "$h: MariaDB did not start on its new datadir; run: $SELF reset $h"
    wait_ready "$h" || die "$h: MariaDB did not start on its new datadir; run: $SELF reset $h"
    log "$h: datadir $layout $path (in $((SECONDS - t0))s)"
}

ssh_args() {
    printf '%s\n' ssh -i "$LAB_ROOT/keys/id_ed25519" -o IdentitiesOnly=yes \
        -o UserKnownHostsFile="$LAB_ROOT/known_hosts" -o StrictHostKeyChecking=yes \
        -o BatchMode=yes -o ConnectTimeout=5 "root@${ADDR[$1]}" --
}

ssh_cmd() {
    local h=$1 args
    shift
    mapfile -t args < <(ssh_args "$h")
    ns_raw operator "${args[@]}" "$@"
}

cmd_ssh() {
    local h=$1 args ns
    shift
    host_usable operator || die "the lab is not up; run: $SELF up"
    mapfile -t args < <(ssh_args "$h")
    mapfile -t ns < <(ns_args operator)
    # exec: stdin, stdout, stderr and the exit code are ssh's own (nsenter passes them on).
    exec nsenter "${ns[@]}" -- "${args[@]}" "$@"
}

cmd_exec() {
    local h=$1 ns
    shift
    host_usable "$h" || die "the lab is not up; run: $SELF up"
    mapfile -t ns < <(ns_args "$h")
    # A daemon started here must not keep what the caller had open: a test lock taken with
    # flock(1) around `lab.sh exec HOST service … start` would stay held while it runs.
    local fd
    for fd in "/proc/$$/fd/"*; do
        fd=${fd##*/}
        if ((fd > 2 && fd != 255)); then
            eval "exec $fd>&-"
        fi
    done
    # Entering a mount namespace resets the working directory to its /; go back to the
    # caller's directory when the host has it (e.g. the repository), else stay in /.
    # shellcheck disable=SC2016 # expanded by sh
    exec nsenter "${ns[@]}" -- sh -c 'cd "$1" 2>/dev/null || cd /; shift; exec "$@"' lab-exec "$PWD" "$@"
}

cmd_env() {
    printf '%s\n' \
        "HA_LAB_ROOT=$LAB_ROOT" \
        "HA_LAB_PRIMARY_ADDR=${ADDR[primary]}" \
        "HA_LAB_SECONDARY_ADDR=${ADDR[secondary]}" \
        "HA_LAB_TERTIARY_ADDR=${ADDR[tertiary]}" \
        "HA_LAB_OPERATOR_ADDR=${ADDR[operator]}" \
        "HA_LAB_KEY=$LAB_ROOT/keys/id_ed25519" \
        "HA_LAB_RSA_KEY=$LAB_ROOT/keys/id_rsa" \
        "HA_LAB_KNOWN_HOSTS=$LAB_ROOT/known_hosts" \
        "HA_LAB_ADMIN_USER=ha-admin" \
        "HA_LAB_ADMIN_PASSWORD=$LAB_ADMIN_PASSWORD" \
        "HA_LAB_NSDIR=$NSDIR" \
        "HA_LAB_INSTANCE=$INSTANCE" \
        "HA_LAB_OPERATOR_NETNS=/run/netns/$(netns_of operator)"
}

# The ha-setup config of the lab pair (root with the lab's key, strict host keys), for the
# demo and the benchmarks.
cmd_config() {
    cat <<TOML
# The lab pair, as \`tests/lab/lab.sh config\` writes it.
engine = "mariadb"

[primary]
host = "${ADDR[primary]}"
ssh_user = "root"
identity_file = "$LAB_ROOT/keys/id_ed25519"

[secondary]
host = "${ADDR[secondary]}"
ssh_user = "root"
identity_file = "$LAB_ROOT/keys/id_ed25519"

[ssh]
known_hosts = "$LAB_ROOT/known_hosts"
host_key_policy = "strict"
TOML
}

cmd_status() {
    local state h line link blocks datadir ok=0
    state=$(lab_state)
    if [[ $state != complete ]]; then
        echo "lab: not up ($state)"
        return 1
    fi
    for h in "${HOSTS[@]}"; do
        if link_is_up "$h"; then link=up; else link="cut"; ok=1; fi
        blocks=$(blocked_from "$h" | paste -sd, -)
        [[ -z $blocks ]] || link+=" blocked-from=$blocks"
        if ! init_pid "$h" >/dev/null; then
            printf '%-10s %s init=gone (run: %s down && %s up)\n' "$h" "${ADDR[$h]}" "$SELF" "$SELF"
            ok=1
        elif is_db_host "$h"; then
            line=$(ns_fn "$h" in_check 2>/dev/null) || line="sshd=? mariadb=? postgresql=?"
            [[ $line == "sshd=up mariadb=up postgresql=up" ]] || ok=1
            datadir=$(ns_fn "$h" in_datadir_show 2>/dev/null) || datadir="?"
            printf '%-10s %s %s link=%s datadir=%s init=%s\n' "$h" "${ADDR[$h]}" "$line" "$link" \
                "${datadir/ /:}" "$(flavour_of "$h")"
        else
            printf '%-10s %s link=%s\n' "$h" "${ADDR[$h]}" "$link"
        fi
    done
    return $ok
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd=$1
    shift
    case $cmd in
    up | down | env | status | config) [[ $# -eq 0 ]] || usage ;;
    reset) ;;
    cut | heal | addr) if [[ $# -ne 1 ]] || ! is_host "$1"; then usage; fi ;;
    flavour) if [[ $# -lt 1 || $# -gt 2 ]] || ! is_db_host "$1" || [[ $# -eq 2 && $2 != plain && $2 != systemd ]]; then usage; fi ;;
    block | unblock) if [[ $# -ne 2 || $1 == "$2" ]] || ! is_host "$1" || ! is_host "$2"; then usage; fi ;;
    break-after) if [[ $# -ne 3 ]] || ! is_host "$1" || ! [[ $2 =~ ^[1-9][0-9]{0,4}$ && $3 =~ ^[1-9][0-9]{0,5}$ ]]; then usage; fi ;;
    datadir)
        if [[ $# -lt 1 || $# -gt 3 ]] || ! is_db_host "$1"; then usage; fi
        if [[ $# -ge 2 && $2 != mount && $2 != plain ]]; then usage; fi
        if [[ $# -eq 3 && $3 != "$DEFAULT_DATADIR" ]] &&
            ! [[ $3 =~ ^/srv(/[A-Za-z0-9._-]+)+$ && $3 != */. && $3 != */.. && $3 != */./* && $3 != */../* ]]; then
            printf 'lab: error: datadir %s: want %s or a path under /srv\n' "$3" "$DEFAULT_DATADIR" >&2
            exit 2
        fi
        ;;
    ssh) if [[ $# -lt 1 ]] || ! is_db_host "$1"; then usage; fi ;;
    exec) if [[ $# -lt 2 ]] || ! is_host "$1"; then usage; fi ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
    require_root
    validate_lab_root
    [[ $RESET_LAYOUT == mount || $RESET_LAYOUT == plain ]] || {
        printf 'lab: error: HA_LAB_RESET_LAYOUT=%s: want mount or plain\n' "$RESET_LAYOUT" >&2
        exit 2
    }
    case $cmd in
    up | down | reset | cut | heal | block | unblock | break-after | datadir | flavour) require_machine_namespaces ;;
    esac
    case $cmd in
    up) cmd_up ;;
    down) cmd_down ;;
    reset) cmd_reset "$@" ;;
    cut) cmd_link down "$1" ;;
    heal) cmd_link up "$1" ;;
    block) cmd_block "$1" "$2" ;;
    unblock) cmd_unblock "$1" "$2" ;;
    break-after) cmd_break_after "$1" "$2" "$3" ;;
    datadir) cmd_datadir "$@" ;;
    flavour) cmd_flavour "$@" ;;
    ssh) cmd_ssh "$@" ;;
    exec) cmd_exec "$@" ;;
    addr) printf '%s\n' "${ADDR[$1]}" ;;
    env) cmd_env ;;
    config) cmd_config ;;
    status) cmd_status ;;
    esac
}

main "$@"
