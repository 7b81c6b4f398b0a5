#!/usr/bin/python3
"""oidc_jwks_serve.py CERT KEY PORT DIR - a client's JWKS endpoint for
t_oidc_jwks.sh: HTTPS on 127.0.0.1:PORT; GET /NAME answers DIR/NAME.json
(404 when missing), /big a valid-looking JSON document over 64 KiB, /notjson
a text page.  Every GET is appended to DIR/fetches.log ("/NAME" per line),
so the test counts the gateway's fetches."""
import http.server
import json
import os
import ssl
import sys

cert, key, port, root = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(root, "fetches.log"), "a") as f:
            f.write(self.path + "\n")
        name = self.path.lstrip("/")
        ctype = "application/json"
        if name == "big":
            body = json.dumps({"keys": [], "pad": "x" * (100 * 1024)}).encode()
        elif name == "notjson":
            body, ctype = b"<html>not a key set</html>", "text/html"
        else:
            path = os.path.join(root, os.path.basename(name) + ".json")
            if not os.path.exists(path):
                self.send_error(404)
                return
            with open(path, "rb") as f:
                body = f.read()
        self.send_response(200)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


srv = http.server.HTTPServer(("127.0.0.1", port), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
open(os.path.join(root, "ready"), "w").close()
srv.serve_forever()
