#!/usr/bin/python3
"""audit_forge.py DIR SEQ KEY.pem KID - what an insider who can write the
audit directory but does not hold the gateway's key can do: change the line
at SEQ ("status":403 -> 200), rebuild the chain after it (every prev), sign
every later head again with KEY under KID, and add KEY's public JWK to
DIR/audit-keys.jwks.  Used by t_audit_rotate.sh to check that
`darvaza audit verify` does not accept such a history."""
import base64
import hashlib
import json
import os
import re
import sys

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def main():
    d, target, key_path, kid = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
    with open(key_path, "rb") as f:
        key = serialization.load_pem_private_key(f.read(), None)
    files = []
    for name in os.listdir(d):
        if name.endswith(".log"):
            with open(os.path.join(d, name), "rb") as f:
                lines = f.read().split(b"\n")[:-1]
            files.append((json.loads(lines[0])["seq"], name, lines))
    files.sort()
    prev = None  # the hash of the line before, once the chain is rebuilt
    changed = False
    for _, name, lines in files:
        for i, line in enumerate(lines):
            seq = json.loads(line)["seq"]
            if prev is not None:
                line = re.sub(rb'"prev":"[0-9a-f]{64}"', b'"prev":"' + prev.encode() + b'"', line)
            if seq >= target and not changed and b'"status":403' in line:
                line = line.replace(b'"status":403', b'"status":200', 1)
                changed = True
            if changed and json.loads(line).get("type") == "head":
                der = key.sign(("darvaza-audit-head|%d|%s" % (seq, prev)).encode(), ec.ECDSA(hashes.SHA256()))
                r, s = decode_dss_signature(der)
                sig = b64u(r.to_bytes(32, "big") + s.to_bytes(32, "big"))
                line = re.sub(rb'"head":"[0-9a-f]{64}"', b'"head":"' + prev.encode() + b'"', line)
                line = re.sub(rb'"kid":"[^"]*"', b'"kid":"' + kid.encode() + b'"', line)
                line = re.sub(rb'"sig":"[^"]*"', b'"sig":"' + sig.encode() + b'"', line)
            lines[i] = line
            if changed:
                prev = hashlib.sha256(line).hexdigest()
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"\n".join(lines) + b"\n")
    if not changed:
        sys.exit("no line with status 403 at or after seq %d" % target)
    pub = key.public_key().public_numbers()
    path = os.path.join(d, "audit-keys.jwks")
    with open(path) as f:
        archive = json.load(f)
    archive["keys"].append({"kty": "EC", "crv": "P-256", "x": b64u(pub.x.to_bytes(32, "big")),
                            "y": b64u(pub.y.to_bytes(32, "big")), "kid": kid, "use": "sig",
                            "alg": "ES256"})
    with open(path, "w") as f:
        json.dump(archive, f)


main()
