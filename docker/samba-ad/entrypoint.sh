#!/bin/sh
# Provisions a Samba AD DC on first start, seeds demo accounts, then runs samba in the
# foreground as PID 1 (it handles SIGTERM itself).
#
# Environment (defaults are for a throwaway demo domain):
#   AD_REALM (EXAMPLE.TEST)  AD_DOMAIN (EXAMPLE)  AD_HOSTNAME (dc1)
#   AD_ADMIN_PASSWORD        Administrator password
#   AD_SERVICE_PASSWORD      password of svc-certgate, the account certgate binds as
#   AD_USER_PASSWORD         password of the demo user alice
#   AD_TLS_CERT / AD_TLS_KEY / AD_TLS_CA   PEM files for LDAPS; generated when unset
set -eu

AD_REALM=${AD_REALM:-EXAMPLE.TEST}
AD_DOMAIN=${AD_DOMAIN:-EXAMPLE}
AD_HOSTNAME=${AD_HOSTNAME:-dc1}
AD_ADMIN_PASSWORD=${AD_ADMIN_PASSWORD:-Adm1nPassw0rd!}
AD_SERVICE_PASSWORD=${AD_SERVICE_PASSWORD:-Svc-Passw0rd!}
AD_USER_PASSWORD=${AD_USER_PASSWORD:-Passw0rd!}

STATE=${AD_STATE_DIR:-/var/lib/samba-ad}
CONF=$STATE/etc/smb.conf
realm_lower=$(printf '%s' "$AD_REALM" | tr '[:upper:]' '[:lower:]')
base_dn=$(printf 'DC=%s' "$realm_lower" | sed 's/\./,DC=/g')

mkdir -p /run/samba /var/log/samba

if [ ! -f "$STATE/.provisioned" ]; then
    echo "samba-ad: provisioning $AD_REALM ($AD_DOMAIN) in $STATE"
    # A half-finished earlier attempt would make provision refuse to run.
    mkdir -p "$STATE"
    find "$STATE" -mindepth 1 -delete
    mkdir -p "$STATE/tls"

    if [ -n "${AD_TLS_CERT:-}" ]; then
        cp "$AD_TLS_CERT" "$STATE/tls/cert.pem"
        cp "$AD_TLS_KEY" "$STATE/tls/key.pem"
        cp "$AD_TLS_CA" "$STATE/tls/ca.pem"
    else
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
            -keyout "$STATE/tls/ca.key" -out "$STATE/tls/ca.pem" -subj "/CN=$AD_DOMAIN demo AD CA" \
            -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign' \
            2>/dev/null
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$AD_HOSTNAME.$realm_lower" \
            -keyout "$STATE/tls/key.pem" -out "$STATE/tls/req.csr" 2>/dev/null
        printf 'subjectAltName=DNS:%s.%s,DNS:%s,DNS:samba-ad,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' \
            "$AD_HOSTNAME" "$realm_lower" "$AD_HOSTNAME" >"$STATE/tls/ext.cnf"
        openssl x509 -req -in "$STATE/tls/req.csr" -CA "$STATE/tls/ca.pem" -CAkey "$STATE/tls/ca.key" \
            -CAcreateserial -days 3650 -out "$STATE/tls/cert.pem" -extfile "$STATE/tls/ext.cnf" 2>/dev/null
        rm -f "$STATE/tls/ca.key" "$STATE/tls/req.csr" "$STATE/tls/ext.cnf" "$STATE/tls/ca.srl"
    fi
    chmod 0600 "$STATE/tls/key.pem"

    # acl_xattr in the user.* namespace: storing NT ACLs in security.* needs CAP_SYS_ADMIN,
    # which a container should not get. "server services = ldap" runs only what certgate uses
    # (LDAP/LDAPS); drop that option for a fuller DC (Kerberos, DRS, ...).
    samba-tool domain provision --targetdir="$STATE" --realm="$AD_REALM" --domain="$AD_DOMAIN" \
        --server-role=dc --dns-backend=NONE --host-name="$AD_HOSTNAME" \
        --adminpass="$AD_ADMIN_PASSWORD" --use-rfc2307 \
        --option="acl_xattr:security_acl_name=user.NTACL" \
        --option="server services=ldap" \
        --option="tls enabled=yes" \
        --option="tls keyfile=$STATE/tls/key.pem" \
        --option="tls certfile=$STATE/tls/cert.pem" \
        --option="tls cafile=$STATE/tls/ca.pem" \
        --option="log file=$STATE/log.%m" \
        --option="pid directory=$STATE/run"
    mkdir -p "$STATE/run"

    S="-s $CONF"
    # shellcheck disable=SC2086 # $S is two words on purpose
    {
        samba-tool ou create "OU=People,$base_dn" $S
        samba-tool ou create "OU=Groups,$base_dn" $S
        samba-tool user create svc-certgate "$AD_SERVICE_PASSWORD" --userou=OU=People \
            --description="certgate directory lookups" $S
        samba-tool user setexpiry svc-certgate --noexpiry $S
        samba-tool user create alice "$AD_USER_PASSWORD" --userou=OU=People --use-username-as-cn \
            --given-name=Alice --surname=Example --mail-address="alice@$realm_lower" $S
        samba-tool group add certgate-users --groupou=OU=Groups $S
        samba-tool group addmembers certgate-users alice $S
    }
    touch "$STATE/.provisioned"
    echo "samba-ad: provisioned; base DN $base_dn, bind as svc-certgate@$realm_lower"
fi

exec samba -s "$CONF" -i -M single --no-process-group --debug-stdout -d1
