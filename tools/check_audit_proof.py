#!/usr/bin/env python3
"""check_audit_proof.py PROOF.json PUBKEY.pem: check a darvaza audit inclusion or consistency
proof (docs/transparency.md) with hashlib and the openssl CLI only.  Exit 0 valid, 1 not."""
import base64, hashlib, json, subprocess, sys, tempfile
H = lambda b: hashlib.sha256(b).digest()
def int_der(b):  # one ASN.1 INTEGER of an ECDSA signature half
    b = b.lstrip(b"\0")
    return b"\x02" + bytes([len(b) + (not b or b[0] >= 0x80)]) + (b"\0" if not b or b[0] >= 0x80 else b"") + b
def head_ok(h, key):  # the ES256 signature (raw r||s) over the head's ASCII string
    msg = "darvaza-audit-tree|v1|%s|%d|%s|%s" % (h["instance"], h["tree_size"], h["root"], h["time"])
    s = base64.urlsafe_b64decode(h["sig"] + "==")
    der = int_der(s[:32]) + int_der(s[32:])
    with tempfile.NamedTemporaryFile() as f:
        f.write(b"\x30" + bytes([len(der)]) + der); f.flush()
        return len(s) == 64 and subprocess.run(["openssl", "dgst", "-sha256", "-verify", key, "-signature", f.name],
                                               input=msg.encode(), capture_output=True).returncode == 0
def walk(fn, sn, path, pairs, right):  # RFC 9162 2.1.3.2 / 2.1.4.2: fold the path into each hash
    while right and fn & 1: fn >>= 1; sn >>= 1  # (consistency only: 2.1.4.2 step 4)
    for c in path:
        if sn == 0: return None
        if fn & 1 or fn == sn:
            pairs = [(H(b"\1" + c + r), k) for r, k in pairs]
            while not fn & 1 and fn: fn >>= 1; sn >>= 1
        else: pairs = [(H(b"\1" + r + c) if k else r, k) for r, k in pairs]
        fn >>= 1; sn >>= 1
    return pairs if sn == 0 else None
p = json.load(open(sys.argv[1])); key = sys.argv[2]; path = [bytes.fromhex(x) for x in p["path"]]
if p.get("v") == 1 and p["type"] == "darvaza-audit-inclusion":
    h, line = p["head"], p["line"].encode()
    r = walk(p["seq"] - 1, h["tree_size"] - 1, path, [(H(b"\0" + line), True)], False)
    ok = json.loads(line)["seq"] == p["seq"] <= h["tree_size"] and r == [(bytes.fromhex(h["root"]), True)] and head_ok(h, key)
elif p.get("v") == 1 and p["type"] == "darvaza-audit-consistency":
    o, h = p["old"], p["new"]; m, n = o["tree_size"], h["tree_size"]; old = bytes.fromhex(o["root"])
    if m == n: ok = not path and o["root"] == h["root"]
    else:
        path = ([old] if m & (m - 1) == 0 else []) + path  # a power-of-two old tree is a node itself
        r = walk(m - 1, n - 1, path[1:], [(path[0], False), (path[0], True)], True) if path and m < n else None
        ok = r == [(old, False), (bytes.fromhex(h["root"]), True)]
    ok = ok and o["instance"] == h["instance"] and head_ok(o, key) and head_ok(h, key)
else: ok = False
print("valid" if ok else "invalid"); sys.exit(0 if ok else 1)
