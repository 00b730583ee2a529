#!/bin/sh
# Makes a node's TLS certificate for its replication address, with the node's own openssl:
# a private CA (kept when there is one: the other nodes trust it, in their peer-ca.pem) and
# a server certificate signed by it. A certificate already there (made for another address)
# is moved aside with its key, not deleted, and a running server loads the new one at once.
# The keys never leave the host.
# Arguments: the TLS directory, the subject (/CN=ADDRESS), the subjectAltName (IP:… or DNS:…),
# the key's owner (user:group), and a command that makes a running server load the new
# certificate.
set -e
dir=$1
subject=$2
san=$3
owner=$4
reload=$5
command -v openssl >/dev/null || {
	echo 'openssl is not installed (apt-get install openssl), or set [replication] tls = false' >&2
	exit 1
}
umask 077
mkdir -p -- "$dir"
cd -- "$dir"
replacing=
if [ -e server-cert.pem ]; then
	replacing=yes
	stamp=$(date -u +%Y%m%dT%H%M%SZ)
	mv -- server-cert.pem "server-cert.pem.ha-setup-old-$stamp"
	if [ -e server-key.pem ]; then mv -- server-key.pem "server-key.pem.ha-setup-old-$stamp"; fi
fi
if [ ! -s ca.pem ] || [ ! -s ca-key.pem ]; then
	openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj '/CN=ha-setup replication CA' \
		-keyout ca-key.pem -out ca.pem 2>/dev/null
fi
openssl req -newkey rsa:2048 -nodes -subj "$subject" -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=%s\n' "$san" >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 3650 \
	-extfile server.ext -out server-cert.pem 2>/dev/null
rm -f server.csr server.ext
chown -- "$owner" server-key.pem
chmod 0644 ca.pem server-cert.pem
chmod 0755 .
if [ -n "$replacing" ]; then
	sh -c "$reload"
fi
