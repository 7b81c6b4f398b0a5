#!/usr/bin/python3
"""oidc_bc_listen.py CERT KEY PORT OUTDIR - an OpenID Connect client's
back-channel logout endpoint for t_oidc.sh: HTTPS on 127.0.0.1:PORT, every
POST body written to OUTDIR/N.body (N = 1, 2, ...), answered 200."""
import http.server
import os
import ssl
import sys

cert, key, port, outdir = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
count = 0


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        global count
        n = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(n) if 0 < n < 65536 else b""
        count += 1
        tmp = os.path.join(outdir, "%d.tmp" % count)
        with open(tmp, "wb") as f:
            f.write(self.headers.get("content-type", "").encode() + b"\n" + body)
        os.rename(tmp, os.path.join(outdir, "%d.body" % count))
        self.send_response(200)
        self.send_header("cache-control", "no-store")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(os.path.join(outdir, "ready"), "w").close()
srv.serve_forever()
