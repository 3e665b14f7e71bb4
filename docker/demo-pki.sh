#!/bin/sh
# One-shot `pki` service of docker/compose.yml: writes a demo CA, certificates for certgate,
# the Samba DC and a client "alice", plus certgate.toml, into /demo (docker/demo on the host).
# Does nothing if /demo/ca.crt exists; delete docker/demo to start over. Demo material only.
set -eu
cd /demo
if [ -f ca.crt ]; then
    echo "demo PKI already present in docker/demo"
    exit 0
fi

newkey() { openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "$@" 2>/dev/null; }

# issue NAME SUBJECT EXTENSIONS: a P-256 key and a certificate signed by the demo CA.
issue() {
    newkey -keyout "$1.key" -out "$1.csr" -subj "$2"
    printf '%b' "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n$3\n" >"$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 365 \
        -out "$1.crt" -extfile "$1.ext" 2>/dev/null
    rm -f "$1.csr" "$1.ext"
}

newkey -x509 -days 365 -keyout ca.key -out ca.crt -subj '/DC=test/DC=example/CN=certgate demo CA' \
    -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
issue server '/CN=localhost' \
    'subjectAltName=DNS:localhost,DNS:certgate,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
issue dc '/CN=dc1.example.test' \
    'subjectAltName=DNS:dc1.example.test,DNS:dc1,DNS:samba-ad,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth'
issue alice '/DC=test/DC=example/CN=alice' \
    'subjectAltName=otherName:1.3.6.1.4.1.311.20.2.3;UTF8:alice@example.test,email:alice@example.test\nextendedKeyUsage=clientAuth'
# bob is mapped but has no account in the demo domain: the directory check refuses him (401.1).
issue bob '/DC=test/DC=example/CN=bob' 'extendedKeyUsage=clientAuth'
# Nothing more gets signed: drop the CA key rather than leave it in a mounted directory.
rm -f ca.key ca.srl

# certgate runs as uid 10001 and must read its key; alice's key is for curl on the host.
chown 10001:10001 server.key
chmod 0600 server.key dc.key
chmod 0644 alice.key bob.key

cat >certgate.toml <<'TOML'
# Demo configuration written by docker/demo-pki.sh.
[server]
listen = ["0.0.0.0:8443"]
admin_listen = "0.0.0.0:9090"

[[site]]
name = "demo"
host_names = ["localhost", "certgate"]
certificate = "/etc/certgate/server.crt"
private_key = "/etc/certgate/server.key"
client_ca = ["/etc/certgate/ca.crt"]
ssl_flags = "Ssl, SslNegotiateCert, SslRequireCert"
anonymous_authentication = false
backend = "http://backend:8080"

# Every mapped account must exist and be usable in AD, and be in certgate-users.
[site.directory]
verify = "account"
require_groups = ["CN=certgate-users,OU=Groups,DC=example,DC=test"]

[site.iis_client_certificate_mapping_authentication]
enabled = true

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\alice"
certificate_file = "/etc/certgate/alice.crt"

[[site.iis_client_certificate_mapping_authentication.one_to_one_mappings]]
user_name = "EXAMPLE\\bob"
certificate_file = "/etc/certgate/bob.crt"

# The samba-ad service; the service account's password comes from compose.yml.
[directory]
urls = ["ldaps://samba-ad:636"]
ca = "/etc/certgate/ca.crt"
bind_dn = "svc-certgate@example.test"
bind_password_env = "CERTGATE_LDAP_PASSWORD"
base_dn = "DC=example,DC=test"
domain = "EXAMPLE"
TOML
echo "demo PKI written to docker/demo"
