#!/usr/bin/env python3
"""An impostor Kerberos backend for tests/kerberos.rs: it takes any `Authorization: Negotiate`
token unread (it holds no service key) and answers 200 with a reply token that cannot verify:

  /forged...   a well-formed SPNEGO accept-completed reply whose Kerberos AP-REP is encrypted
               with a key it made up (what a server without the SPN's key can send)
  /reject...   a SPNEGO reply with negState reject
  /garbage...  bytes that are not a GSS-API token at all
  /none...     no WWW-Authenticate header (RFC 4559 allows leaving the token out)

The body says `IMPOSTOR` and whether a Negotiate token arrived. Prints "port N" once listening on
127.0.0.1 (ephemeral port).
"""
import base64
import http.server
import os
import sys


def der(tag, body):
    n = len(body)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + body


def integer(v):
    return der(0x02, bytes([v]))


KRB5_OID = der(0x06, bytes.fromhex("2a864886f712010202"))


def forged_ap_rep():
    # AP-REP ::= [APPLICATION 15] SEQUENCE { pvno [0] 5, msg-type [1] 15,
    #            enc-part [2] EncryptedData { etype [0] 18, cipher [2] OCTET STRING } }
    enc = der(0x30, der(0xA0, integer(18)) + der(0xA2, der(0x04, os.urandom(96))))
    ap_rep = der(0x6F, der(0x30, der(0xA0, integer(5)) + der(0xA1, integer(15)) + der(0xA2, enc)))
    # RFC 1964 framing: [APPLICATION 0] { mech OID, TOK_ID 02 00 (AP-REP), AP-REP }
    inner = der(0x60, KRB5_OID + b"\x02\x00" + ap_rep)
    # negTokenResp [1] { negState [0] accept-completed, supportedMech [1], responseToken [2] }
    resp = der(0xA0, der(0x0A, b"\x00")) + der(0xA1, KRB5_OID) + der(0xA2, der(0x04, inner))
    return der(0xA1, der(0x30, resp))


def reject():
    return der(0xA1, der(0x30, der(0xA0, der(0x0A, b"\x02"))))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        auth = self.headers.get("Authorization", "")
        body = ("IMPOSTOR\nNEGOTIATE_RECEIVED=%s\n" % auth.startswith("Negotiate ")).encode()
        token = None
        if self.path.startswith("/forged"):
            token = forged_ap_rep()
        elif self.path.startswith("/reject"):
            token = reject()
        elif self.path.startswith("/garbage"):
            token = b"this is not a GSS-API token"
        self.send_response(200)
        if token is not None:
            self.send_header("WWW-Authenticate", "Negotiate " + base64.b64encode(token).decode())
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        sys.stderr.write("negotiate_backend: " + fmt % args + "\n")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("port %d" % server.server_address[1], flush=True)
server.serve_forever()
