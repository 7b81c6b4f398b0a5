#!/usr/bin/python3
"""verify_assertion.py - how a back end checks a Darvaza-Assertion with an
ordinary JWT library (PyJWT, Debian's python3-jwt) and a few lines of
hashing; both forms (docs/assertions.md):

    signed alone   <JWS typ darvaza-assertion+jwt over the claims>
    batch-signed   <JWS typ darvaza-assertion-batch+jwt over the batch root>~<claims>~<path>

    verify_assertion.py --jwks FILE --iss ISS --aud AUD [--htm M] [--htu P] TOKEN

Prints the request's claims as JSON (exit 0) or "invalid: <why>" (exit 1).
Replay (jti) and the body digest (bdy) are the back end's own checks, as
with any token; they are left out here.
"""
import argparse
import base64
import hashlib
import json
import sys

import jwt  # PyJWT

ALG = ["ES256"]


def b64d(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))


def b64e(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def verify_batch(token, key, iss, aud):
    """The batch form: the root JWS by the JWT library, then the path."""
    root_jws, leaf_b64, path_b64 = token.split("~")
    if jwt.get_unverified_header(root_jws).get("typ") != "darvaza-assertion-batch+jwt":
        raise ValueError("wrong_type")
    root = jwt.decode(root_jws, key, algorithms=ALG, issuer=iss, audience=aud)
    leaf, path = b64d(leaf_b64), b64d(path_b64)
    if len(path) % 33:
        raise ValueError("malformed")
    h = hashlib.sha256(b"\x00" + leaf).digest()
    for i in range(0, len(path), 33):
        side, sibling = path[i], path[i + 1:i + 33]
        if side not in (0, 1):
            raise ValueError("malformed")
        h = hashlib.sha256(b"\x01" + (sibling + h if side == 0 else h + sibling)).digest()
    if b64e(h) != root["mrk"]:
        raise ValueError("bad_signature")  # these claims are not in the signed batch
    claims = json.loads(leaf)
    if any(claims.get(k) != root[k] for k in ("iss", "aud", "iat", "exp")):
        raise ValueError("malformed")
    return claims


def verify(token, key, iss, aud):
    if "~" in token:
        return verify_batch(token, key, iss, aud)
    if jwt.get_unverified_header(token).get("typ") != "darvaza-assertion+jwt":
        raise ValueError("wrong_type")
    return jwt.decode(token, key, algorithms=ALG, issuer=iss, audience=aud)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jwks", required=True, help="the gateway's JWK set (a file)")
    ap.add_argument("--iss", required=True)
    ap.add_argument("--aud", required=True)
    ap.add_argument("--htm")
    ap.add_argument("--htu")
    ap.add_argument("token")
    a = ap.parse_args()
    try:
        first = a.token.split("~")[0]
        kid = jwt.get_unverified_header(first).get("kid")
        with open(a.jwks, encoding="utf-8") as f:
            keys = [k for k in json.load(f)["keys"] if k.get("kid") == kid]
        if not keys:
            raise ValueError("unknown_key")
        key = jwt.algorithms.ECAlgorithm.from_jwk(json.dumps(keys[0]))
        claims = verify(a.token, key, a.iss, a.aud)
        if a.htm is not None and claims.get("htm") != a.htm:
            raise ValueError("method_mismatch")
        if a.htu is not None and claims.get("htu") != a.htu:
            raise ValueError("path_mismatch")
    except (ValueError, KeyError, jwt.PyJWTError) as e:
        print(f"invalid: {e}")
        return 1
    print(json.dumps(claims, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
