#!/usr/bin/env bash
# Makes the fixed test PKI of the `ocsp` fuzz target (fuzz/data/ocsp/) and real seeds for the
# `ocsp` and `crl` targets with openssl: OCSP responses signed by the CA and by a delegated
# responder (good, revoked, unknown, without nextUpdate, about another certificate, signed by an
# unauthorised key), and CRLs with an Issuing Distribution Point, a delta CRL indicator and a
# Freshest CRL pointer. Run it again only to replace them all: the responses are tied to the PKI
# and to the time in fuzz/data/ocsp/now (the target verifies at that instant).
#
#   bash fuzz/make-revocation-seeds.sh
set -euo pipefail
cd "$(dirname "$0")"
command -v openssl >/dev/null || {
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=900 --no-install-recommends openssl
}
fuzz=$(pwd)
data=data/ocsp
mkdir -p "$data/responses" corpus/ocsp corpus/crl
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
cat >ext.cnf <<'EOF'
[ca]
basicConstraints = critical,CA:true
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[leaf]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
crlDistributionPoints = URI:http://cdp.example.test/ca.crl,URI:ldap:///CN=Fuzz%20CA%2CCN=CDP%2CDC=example%2CDC=test?certificateRevocationList?base?objectClass=cRLDistributionPoint
authorityInfoAccess = OCSP;URI:http://ocsp.example.test/
freshestCRL = URI:http://cdp.example.test/delta.crl
[responder]
basicConstraints = critical,CA:false
keyUsage = critical,digitalSignature
extendedKeyUsage = OCSPSigning
EOF
ec ca.key
openssl req -x509 -new -key ca.key -subj "/CN=Fuzz OCSP CA" -days 36500 -extensions ca -config <(printf '[req]\ndistinguished_name=d\n[d]\n'; cat ext.cnf) -out ca.pem
# Another CA with the same name whose key is thrown away: nothing may verify with its key alone.
ec stranger.key
openssl req -x509 -new -key stranger.key -subj "/CN=Fuzz OCSP CA" -days 36500 -extensions ca -config <(printf '[req]\ndistinguished_name=d\n[d]\n'; cat ext.cnf) -out stranger.pem
# An impostor with the same name that signs a seed (refused: not the CA, not authorised by it).
ec impostor.key
openssl req -x509 -new -key impostor.key -subj "/CN=Fuzz OCSP CA" -days 36500 -extensions ca -config <(printf '[req]\ndistinguished_name=d\n[d]\n'; cat ext.cnf) -out impostor.pem
issue() { # name serial extensions
  ec "$1.key"
  openssl req -new -key "$1.key" -subj "/CN=$1" -out "$1.csr"
  openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -set_serial "$2" -days 36500 \
    -extfile ext.cnf -extensions "$3" -out "$1.pem" 2>/dev/null
}
issue leaf 0x1001 leaf
issue responder 0x2002 responder
for c in ca stranger leaf responder; do openssl x509 -in "$c.pem" -outform DER -out "$fuzz/$data/$c.der"; done
echo $(($(date +%s) + 60)) >"$fuzz/$data/now"

# openssl's CA database: 0x1001 revoked (keyCompromise), 0x2002 valid, 0x3003 on hold.
future=$(date -u -d '+50 years' +%Y%m%d%H%M%SZ)
past=$(date -u -d '-1 day' +%y%m%d%H%M%SZ)
printf 'R\t%s\t%s,keyCompromise\t1001\tunknown\t/CN=leaf\n' "$future" "$past" >index.txt
printf 'V\t%s\t\t2002\tunknown\t/CN=responder\n' "$future" >>index.txt
printf 'R\t%s\t%s,certificateHold,holdInstructionReject\t3003\tunknown\t/CN=held\n' "$future" "$past" >>index.txt
echo "unique_subject = no" >index.txt.attr
cp index.txt revoked-index.txt
printf 'V\t%s\t\t1001\tunknown\t/CN=leaf\n' "$future" >good-index.txt
printf 'V\t%s\t\t2002\tunknown\t/CN=responder\n' "$future" >>good-index.txt
printf 'V\t%s\t\t2002\tunknown\t/CN=responder\n' "$future" >unknown-index.txt

respond() { # out serial index signer key extra...
  local out=$1 serial=$2 index=$3 signer=$4 key=$5
  shift 5
  openssl ocsp -issuer ca.pem -serial "$serial" -no_nonce -reqout req.der >/dev/null
  openssl ocsp -index "$index" -CA ca.pem -rsigner "$signer" -rkey "$key" -reqin req.der \
    -respout "$fuzz/$data/responses/$out" "$@" >/dev/null
}
respond ca-good.der 0x1001 good-index.txt ca.pem ca.key -ndays 3650 -resp_no_certs
respond ca-revoked.der 0x1001 revoked-index.txt ca.pem ca.key -ndays 3650 -resp_no_certs
respond ca-no-next-update.der 0x1001 good-index.txt ca.pem ca.key -resp_no_certs
respond ca-unknown.der 0x1001 unknown-index.txt ca.pem ca.key -ndays 3650 -resp_no_certs
respond ca-other-certificate.der 0x4004 good-index.txt ca.pem ca.key -ndays 3650 -resp_no_certs
respond delegated-good.der 0x1001 good-index.txt responder.pem responder.key -ndays 3650
respond delegated-revoked-by-key-id.der 0x1001 revoked-index.txt responder.pem responder.key -ndays 3650 -resp_key_id
respond impostor-good.der 0x1001 good-index.txt impostor.pem impostor.key -ndays 3650
# A response to a request for two certificates (the leaf is the second).
openssl ocsp -issuer ca.pem -serial 0x3003 -serial 0x1001 -no_nonce -reqout req2.der >/dev/null
openssl ocsp -index revoked-index.txt -CA ca.pem -rsigner ca.pem -rkey ca.key -reqin req2.der \
  -respout "$fuzz/$data/responses/ca-two-answers.der" -ndays 3650 >/dev/null
# An unsuccessful responseStatus (tryLater) as a responder sends it.
printf '\x30\x03\x0a\x01\x03' >"$fuzz/$data/responses/try-later.der"

# CRLs: a base with an Issuing Distribution Point (user certs only, one URI) and a Freshest CRL
# pointer, and its delta (deltaCRLIndicator, removeFromCRL lifting the hold).
crl() { # out number exts...
  local out=$1 number=$2
  shift 2
  printf '%02X\n' "$number" >crlnumber
  {
    printf '[ca]\ndefault_ca = d\n[d]\ndatabase = index.txt\ncrlnumber = crlnumber\n'
    printf 'default_md = sha256\ncrl_extensions = crlext\n[crlext]\nauthorityKeyIdentifier = keyid:always\n'
    printf '%s\n' "$@"
    printf '[idp]\nfullname = URI:http://cdp.example.test/ca.crl\nonlyuser = TRUE\n'
  } >crl.cnf
  openssl ca -batch -config crl.cnf -gencrl -keyfile ca.key -cert ca.pem -crldays 3650 -out crl.pem 2>/dev/null
  openssl crl -in crl.pem -outform DER -out "$fuzz/corpus/crl/$out"
}
crl idp-base.der 7 "issuingDistributionPoint = critical,@idp" "freshestCRL = URI:http://cdp.example.test/delta.crl"
printf 'R\t%s\t%s,removeFromCRL\t3003\tunknown\t/CN=held\n' "$future" "$past" >index.txt
crl idp-delta.der 8 "issuingDistributionPoint = critical,@idp" "deltaCRL = critical,DER:02:01:07"
cat "$fuzz/corpus/crl/idp-base.der" "$fuzz/corpus/crl/idp-delta.der" >"$fuzz/corpus/crl/idp-base-and-delta.der"
cp "$fuzz/$data"/responses/* "$fuzz/corpus/ocsp/"
echo "made $(ls "$fuzz/$data/responses" | wc -l) OCSP responses in fuzz/$data/responses (copied to corpus/ocsp), PKI in fuzz/$data"
