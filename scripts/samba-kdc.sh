#!/usr/bin/env bash
# Kerberos parts of the test AD (tests/kerberos.rs), on top of a DC started by scripts/samba-ad.sh
# (which runs Samba's KDC next to LDAP). Debian 12, run as root; no systemd.
#
#   scripts/samba-kdc.sh start DIR   seed the delegation accounts once, export keytabs, write
#                                    DIR/krb5.conf, self-test S4U, start a private Apache with
#                                    mod_auth_gssapi as the Kerberos backend; prints `export`s
#   scripts/samba-kdc.sh stop  DIR   SIGTERM that Apache and wait
#
# DIR is the samba-ad.sh DIR. What it sets up (realm EXAMPLE.TEST):
#   svc-certgate   (samba-ad.sh's bind account) also gets SPN HTTP/certgate.example.test,
#                  protocol transition (TRUSTED_TO_AUTH_FOR_DELEGATION) and
#                  msDS-AllowedToDelegateTo = HTTP/backend.example.test, HTTP/backend
#   backend$       computer, SPN HTTP/backend.example.test: the Apache backend's identity
#   other$         computer, SPN HTTP/other.example.test: NOT in svc-certgate's delegation list
#   olivia         enabled user whose altSecurityIdentities tests/kerberos.rs writes (AD mapping)
#   Keytabs DIR/keytabs/{svc-certgate,backend,other}.keytab.
# Apache's children run as www-data, which may not be able to traverse DIR (a checkout in a
# 0700 directory, a root-only home): its configuration, CGI, logs and copies of krb5.conf and of
# the two backend keytabs (0644: test use only) live in a directory of its own under /tmp
# (mode 755), whose path DIR/apache.dir records so that `stop` removes it.
# Apache (127.0.0.1, a free port): any path ending in `whoami` answers REMOTE_USER (and the
# X-Remote-User request header) for tickets to HTTP/backend.example.test. Under /other only
# HTTP/other.example.test is accepted, so a ticket for the backend SPN gets 401 there (the
# "bad token" case). Under /bound authentication is connection-bound (GssapiConnectionBound), as
# IIS keeps a Negotiate connection authenticated: a request without a token on a connection
# someone authenticated runs as that someone; elsewhere such a request gets 401 (Negotiate).
# Under /bound/hint-off responses also say `Persistent-Auth: false` (IIS with authPersistNonNTLM
# off), which a client must honour by sending a token every time. The
# access log's last field says whether a request carried a Negotiate token.
set -euo pipefail

usage="usage: $0 start|stop DIR"
cmd=${1:?$usage}
DIR=$(realpath -m "${2:?$usage}")
REALM=EXAMPLE.TEST

# Stops the Apache a previous `start` left (if any) and removes its directory.
stop_apache() {
  [ -f "$DIR/apache.dir" ] || return 0
  local a pid
  a=$(cat "$DIR/apache.dir")
  if [ -f "$a/apache.pid" ]; then
    pid=$(cat "$a/apache.pid")
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" || true; fi
    fi
  fi
  # Only ever a directory this script made (mktemp's pattern), never what a stray file names.
  case "$a" in /tmp/certgate-kdc-apache.??????????) rm -rf -- "$a" ;; esac
  rm -f "$DIR/apache.dir"
}

case "$cmd" in
  stop) stop_apache; exit 0 ;;
  start) ;;
  *) echo "$usage" >&2; exit 2 ;;
esac
log() { echo "# samba-kdc: $*" >&2; }
[ -f "$DIR/samba.pid" ] && [ -f "$DIR/seeded" ] || {
  echo "start the DC first: scripts/samba-ad.sh start $DIR" >&2; exit 1; }
IP=$(sed -n 's/^\tinterfaces = \(.*\)\/8$/\1/p' "$DIR/etc/smb.conf")

# 1. Packages: MIT client tools (kinit/kvno for the self-test), the GSS-API runtime, and the
#    backend (Apache + mod_auth_gssapi). policy-rc.d-less images would start apache's own
#    service on install; CI containers have none.
need=()
command -v kvno >/dev/null || need+=(krb5-user)
[ -e /usr/lib/x86_64-linux-gnu/libgssapi_krb5.so.2 ] || ldconfig -p | grep -q libgssapi_krb5.so.2 \
  || need+=(libgssapi-krb5-2)
[ -x /usr/sbin/apache2 ] || need+=(apache2)
[ -f /usr/lib/apache2/modules/mod_auth_gssapi.so ] || need+=(libapache2-mod-auth-gssapi)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 \
    --no-install-recommends "${need[@]}" >&2
fi

# 2. krb5.conf for tests (used through KRB5_CONFIG; /etc/krb5.conf is never touched).
#    forwardable: S4U2Proxy needs a forwardable service TGT. TCP only: PAC-carrying replies do
#    not fit UDP. No DNS canonicalisation: the SPN is exactly what the config says. DEAD.TEST
#    names a KDC nobody runs (port 9 on the DC's address): the "KDC unreachable" case.
mkdir -p "$DIR/keytabs" "$DIR/ccache"
cat > "$DIR/krb5.conf" <<EOF
[libdefaults]
	default_realm = $REALM
	dns_lookup_kdc = false
	dns_lookup_realm = false
	dns_canonicalize_hostname = false
	rdns = false
	forwardable = true
	udp_preference_limit = 0
	default_ccache_name = MEMORY:certgate-test
[realms]
	$REALM = {
		kdc = $IP
	}
	DEAD.TEST = {
		kdc = $IP:9
	}
[domain_realm]
	.example.test = $REALM
	example.test = $REALM
EOF

# 3. Seed once (the DC is running; ldb locks its files) and export keytabs.
SEEDED=$DIR/kdc-seeded-2
if [ ! -f "$SEEDED" ] || [ ! -f "$DIR/keytabs/backend.keytab" ]; then
  /usr/bin/python3 - "$DIR/etc/smb.conf" "$DIR/keytabs" 'Passw0rd!' <<'PY'
import os, secrets, sys
import ldb
from samba import dsdb, enable_net_export_keytab
from samba.auth import system_session
from samba.net import Net
from samba.param import LoadParm
from samba.samdb import SamDB

lp = LoadParm(); lp.load(sys.argv[1]); ktdir, userpass = sys.argv[2], sys.argv[3]
db = SamDB(url=lp.private_path("sam.ldb"), session_info=system_session(), lp=lp)
base = str(db.domain_dn())

def replace(dn, attrs):
    m = ldb.Message(ldb.Dn(db, dn))
    for k, v in attrs.items():
        m[k] = ldb.MessageElement(v, ldb.FLAG_MOD_REPLACE, k)
    db.modify(m)

def exists(sam):
    return len(db.search(base, expression=f"(sAMAccountName={sam})", attrs=["dn"])) > 0

svc = str(db.search(base, expression="(sAMAccountName=svc-certgate)", attrs=["dn"])[0].dn)
replace(svc, {"servicePrincipalName": ["HTTP/certgate.example.test", "HTTP/certgate"],
              "msDS-AllowedToDelegateTo": ["HTTP/backend.example.test", "HTTP/backend"]})
uac = int(db.search(svc, scope=ldb.SCOPE_BASE, attrs=["userAccountControl"])[0]["userAccountControl"][0])
if not uac & dsdb.UF_TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION:
    # == samba-tool delegation for-any-protocol svc-certgate on
    db.toggle_userAccountFlags("(sAMAccountName=svc-certgate)",
                               dsdb.UF_TRUSTED_TO_AUTHENTICATE_FOR_DELEGATION)
if not exists("olivia"):
    db.newuser("olivia", userpass, userou="OU=People", useusernameascn=True,
               mailaddress="olivia@example.test")
# Computer accounts come disabled and without a password: set one and enable them.
for cn in ["backend", "other"]:
    if not exists(cn + "$"):
        db.newcomputer(cn, service_principal_name_list=[f"HTTP/{cn}.example.test", f"HTTP/{cn}"])
        db.setpassword(f"(sAMAccountName={cn}$)", secrets.token_urlsafe(24), False)
        db.enable_account(f"(sAMAccountName={cn}$)")
        replace(f"CN={cn},CN=Computers,{base}", {"dNSHostName": [f"{cn}.example.test"],
                                                  "msDS-SupportedEncryptionTypes": ["24"]})

enable_net_export_keytab()
net = Net(None, lp)
for f, p in [("svc-certgate", "svc-certgate@EXAMPLE.TEST"),
             ("backend", "HTTP/backend.example.test@EXAMPLE.TEST"),
             ("other", "HTTP/other.example.test@EXAMPLE.TEST")]:
    path = os.path.join(ktdir, f + ".keytab")
    if os.path.exists(path):
        os.unlink(path)
    net.export_keytab(keytab=path, principal=p)  # == samba-tool domain exportkeytab
    os.chmod(path, 0o644)
PY
  touch "$SEEDED"
  log "delegation seeded, keytabs exported"
fi

# 4. Self-test: the service account's keytab TGT, then S4U2Self + S4U2Proxy for alice.
(
  export KRB5_CONFIG="$DIR/krb5.conf" KRB5CCNAME="FILE:$DIR/ccache/selftest"
  kinit -k -t "$DIR/keytabs/svc-certgate.keytab" "svc-certgate@$REALM" &&
    kvno -q -U alice -P "HTTP/backend.example.test@$REALM" >/dev/null &&
    kdestroy -q
) >&2 || { echo "KDC self-test (kinit -k + kvno -U alice -P) failed" >&2; exit 1; }

# 5. The backend: a private Apache with mod_auth_gssapi (prefork, CGI /whoami), in a directory
#    www-data can reach whatever DIR's permissions are.
stop_apache
A=$(mktemp -d /tmp/certgate-kdc-apache.XXXXXXXXXX)
echo "$A" > "$DIR/apache.dir"
mkdir -p "$A/cgi" "$A/run" "$A/logs" "$A/htdocs" "$A/keytabs"
chmod 755 "$A" "$A/cgi" "$A/htdocs" "$A/keytabs"
for k in backend other; do
  install -m 0644 "$DIR/keytabs/$k.keytab" "$A/keytabs/$k.keytab"
done
install -m 0644 "$DIR/krb5.conf" "$A/krb5.conf"
printf '%s\n' '#!/bin/sh' \
  "printf 'Content-Type: text/plain\\r\\n\\r\\n'" \
  "printf 'REMOTE_USER=%s\\nAUTH_TYPE=%s\\nX_REMOTE_USER=%s\\n' \"\$REMOTE_USER\" \"\$AUTH_TYPE\" \"\$HTTP_X_REMOTE_USER\"" \
  > "$A/cgi/whoami"
chmod 755 "$A/cgi/whoami"
echo ok > "$A/htdocs/index.html"
PORT=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
sed "s|@A@|$A|g; s|@PORT@|$PORT|g" > "$A/httpd.conf" <<'CONF'
ServerRoot @A@
ServerName backend.example.test
Listen 127.0.0.1:@PORT@
PidFile @A@/run/httpd.pid
DefaultRuntimeDir @A@/run
Mutex file:@A@/run
ErrorLog @A@/logs/error.log
LogLevel warn auth_gssapi:info
# Last field: whether the request carried a Negotiate token (`token`, else `-`).
LogFormat "%h \"%u\" \"%r\" %>s %{CG_NEGOTIATE}e" short
CustomLog @A@/logs/access.log short
User www-data
Group www-data
LoadModule mpm_prefork_module /usr/lib/apache2/modules/mod_mpm_prefork.so
LoadModule authn_core_module  /usr/lib/apache2/modules/mod_authn_core.so
LoadModule authz_core_module  /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authz_user_module  /usr/lib/apache2/modules/mod_authz_user.so
LoadModule auth_gssapi_module /usr/lib/apache2/modules/mod_auth_gssapi.so
LoadModule alias_module       /usr/lib/apache2/modules/mod_alias.so
LoadModule cgi_module         /usr/lib/apache2/modules/mod_cgi.so
LoadModule headers_module     /usr/lib/apache2/modules/mod_headers.so
LoadModule setenvif_module    /usr/lib/apache2/modules/mod_setenvif.so
SetEnvIf Authorization "^Negotiate " CG_NEGOTIATE=token
StartServers 2
MinSpareServers 1
MaxSpareServers 4
MaxRequestWorkers 8
KeepAlive On
DocumentRoot @A@/htdocs
ScriptAliasMatch ^/.*whoami$ @A@/cgi/whoami
<Directory @A@/cgi>
    Options +ExecCGI
</Directory>
<Location />
    AuthType GSSAPI
    AuthName "backend"
    GssapiCredStore keytab:@A@/keytabs/backend.keytab
    GssapiAllowedMech krb5
    Require valid-user
    Header always set X-Remote-User "expr=%{REMOTE_USER}"
</Location>
<Location /other>
    GssapiCredStore keytab:@A@/keytabs/other.keytab
</Location>
<Location /bound>
    GssapiCredStore keytab:@A@/keytabs/backend.keytab
    GssapiConnectionBound On
</Location>
<Location /bound/hint-off>
    Header always set Persistent-Auth false
</Location>
CONF
# setsid: on SIGTERM prefork Apache killpg()s its process group, which under -DFOREGROUND
# would be the caller's (the test runner, and samba started with --no-process-group).
KRB5_CONFIG="$A/krb5.conf" setsid /usr/sbin/apache2 -f "$A/httpd.conf" -DFOREGROUND \
  > "$A/logs/stdout.log" 2>&1 < /dev/null &
echo $! > "$A/apache.pid"
code=
for _ in $(seq 200); do
  code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/whoami" || true)
  [ "$code" = 401 ] && break
  kill -0 "$(cat "$A/apache.pid")" 2>/dev/null || break
  sleep 0.05
done
if [ "$code" != 401 ]; then
  echo "apache did not start:" >&2
  tail -n 20 "$A/logs/stdout.log" "$A/logs/error.log" >&2 || true
  stop_apache
  exit 1
fi
log "Apache (mod_auth_gssapi) on 127.0.0.1:$PORT"

cat <<EOF
export KRB5_CONFIG=$DIR/krb5.conf
export KRB_REALM=$REALM
export KRB_SERVICE_PRINCIPAL=svc-certgate@$REALM
export KRB_SERVICE_KEYTAB=$DIR/keytabs/svc-certgate.keytab
export KRB_BACKEND_URL=http://127.0.0.1:$PORT
export KRB_BACKEND_SPN=HTTP/backend.example.test
export KRB_OTHER_SPN=HTTP/other.example.test
export KRB_BACKEND_ACCESS_LOG=$A/logs/access.log
EOF
