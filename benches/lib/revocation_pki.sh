# Sourced by benches/compare.sh and benches/callgrind.sh (the certgate-revocation variant), in
# a directory holding ca.{crt,key} and client.csr.
#
# revocation_pki PORT CLIENT_EXT: client-rev.crt, the client's key in a certificate with the
# extensions CLIENT_EXT (printf text, as the plain client certificate has them) plus a CRL
# Distribution Point http://127.0.0.1:PORT/ca.crl; and cdp/ca.crl, the CA's CRL listing 1,000
# other serials, made by `openssl ca -gencrl`. The CA must allow cRLSign.
revocation_pki() {
    local port=$1 ext=$2
    # shellcheck disable=SC2059 # the extensions are printf text on purpose
    openssl x509 -req -in client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -out client-rev.crt \
        -extfile <(printf "${ext}crlDistributionPoints=URI:http://127.0.0.1:%s/ca.crl\n" "$port") \
        2>/dev/null
    python3 -c "
for i in range(1000):
    print(f'R\t301231000000Z\t240101000000Z,keyCompromise\t{0x100000 + i:X}\tunknown\t/CN=r{i}')
" >index.txt
    echo 01 >crlnumber
    printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\ndefault_md = sha256\ndefault_crl_days = 2\ncrl_extensions = e\n[e]\nauthorityKeyIdentifier = keyid:always\n' >ca.cnf
    mkdir -p cdp
    openssl ca -batch -config ca.cnf -gencrl -keyfile ca.key -cert ca.crt -out crl.pem 2>/dev/null
    openssl crl -in crl.pem -outform DER -out cdp/ca.crl
}
