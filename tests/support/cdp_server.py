#!/usr/bin/env python3
"""A CRL distribution point for the revocation tests: serves the files of a directory over
HTTP/1.1 and, on purpose, misbehaves on a few paths:

  /slow/NAME      waits 30 s before answering
  /huge           streams an endless body
  /garbage        answers 200 with bytes that are not a CRL
  /loop           redirects to itself
  /redirect/NAME  redirects to /NAME

POST answers like GET (the request body is read and ignored): static OCSP responses.

Prints "port N" once listening (port 0 picks one). Requests are logged to stderr.
"""
import http.server
import os
import sys
import time


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        path = self.path.split("?")[0]
        if path.startswith("/slow/"):
            time.sleep(30)
            path = "/" + path[len("/slow/"):]
        if path == "/huge":
            self.send_response(200)
            self.send_header("Content-Type", "application/pkix-crl")
            self.end_headers()
            chunk = b"\x30" * 65536
            try:
                while True:
                    self.wfile.write(chunk)
            except (BrokenPipeError, ConnectionResetError):
                return
        if path == "/garbage":
            return self.reply(200, b"\x30\x82\x01\x00this is not a CRL" * 4)
        if path == "/loop":
            return self.redirect("/loop")
        if path.startswith("/redirect/"):
            return self.redirect("/" + path[len("/redirect/"):])
        name = os.path.join(sys.argv[1], os.path.basename(path))
        try:
            with open(name, "rb") as f:
                body = f.read()
        except OSError:
            return self.reply(404, b"not found")
        self.reply(200, body)

    def do_POST(self):
        # An OCSP responder stand-in: reads the request and answers with the file at the path
        # (a response made beforehand by `openssl ocsp -respout`).
        length = int(self.headers.get("Content-Length", "0"))
        if length:
            self.rfile.read(length)
        self.do_GET()

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/pkix-crl")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def redirect(self, location):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()


server = http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[2])), Handler)
print("port", server.server_address[1], flush=True)
server.serve_forever()
