#!/bin/sh
# Whether this node reaches the other nodes' Galera ports, tested from here while every
# node runs this at the same time. Ports nothing listens on yet get a stand-in listener on
# this node's own address for the test's length, so a firewall shows up before anything
# changes; a port something listens on already (the server) answers for itself.
# Arguments: this node's address, the ports to listen on (space-separated), how many
# seconds to listen, then the ports to probe, one "NAME ADDRESS PORT" line each.
# Output: "listen PORT stand-in|in-use|unavailable", then "ok|fail NAME ADDRESS PORT".
exec perl - "$@" <<'PERL'
use strict;
use warnings;
use IO::Socket::IP;
use IO::Select;
use POSIX ();

$| = 1;
my ($own, $ports, $secs, $targets) = @ARGV;
my $listening = IO::Select->new;
for my $port (split ' ', $ports) {
    my $socket = IO::Socket::IP->new(
        LocalHost => $own, LocalPort => $port, Listen => 16, ReuseAddr => 1, Proto => 'tcp');
    if ($socket) {
        $listening->add($socket);
        print "listen $port stand-in\n";
    } elsif ($!{EADDRINUSE}) {
        print "listen $port in-use\n";
    } else {
        print "listen $port unavailable\n";
    }
}
my @children;
my $listener = fork;
die "fork: $!" unless defined $listener;
if ($listener == 0) {
    my $end = time + $secs;
    while (time < $end) {
        for my $socket ($listening->can_read(0.2)) {
            my $peer = $socket->accept;
            close $peer if $peer;
        }
    }
    POSIX::_exit(0);
}
# The other nodes start their listeners at about the same time.
sleep 1;
for my $line (split /\n/, $targets) {
    my ($name, $address, $port) = split ' ', $line;
    next unless defined $port;
    my $child = fork;
    die "fork: $!" unless defined $child;
    if ($child == 0) {
        my $end = time + $secs - 3;
        my $ok = 0;
        while (!$ok && time < $end) {
            my $peer = IO::Socket::IP->new(
                PeerHost => $address, PeerPort => $port, Proto => 'tcp', Timeout => 2);
            if ($peer) {
                $ok = 1;
                close $peer;
            } else {
                select(undef, undef, undef, 0.25);
            }
        }
        syswrite STDOUT, ($ok ? "ok" : "fail") . " $name $address $port\n";
        POSIX::_exit(0);
    }
    push @children, $child;
}
waitpid($_, 0) for @children;
waitpid($listener, 0);
PERL
