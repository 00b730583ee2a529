#!/bin/sh
# On a node, as root: an empty staging directory beside a [[sync_files]] path, on the same
# file system, where the primary's copy is unpacked and checked before it is renamed into
# place. Whatever an interrupted run left there goes first. Only root may enter it: the
# copy may be a secret.
# Argument: PATH. The staging directory is PATH.ha-setup-new.
set -eu
stage=$1.ha-setup-new
rm -rf -- "$stage"
mkdir -m 0700 -- "$stage"
