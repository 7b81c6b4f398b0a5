#!/usr/bin/python3
"""oidc_rp.py - the relying party's side of the code flow, done by Debian's
python3-authlib (its own URI building, PKCE, client assertion and JOSE code),
for t_oidc.sh.  HTTP is curl's job (the gateway speaks HTTP/2 only); this
script only builds what a client sends and checks what it receives.

  oidc_rp.py keygen KEYFILE                  EC P-256 key -> KEYFILE (PEM),
                                             its public JWKS on stdout
  oidc_rp.py start AUTHZ_URL CLIENT_ID REDIRECT [k=v ...]
                                             {"url","state","nonce","verifier"}
  oidc_rp.py callback LOCATION STATE         {"code"} or exit 1 with the error
  oidc_rp.py assertion KEYFILE CLIENT_ID TOKEN_URL [alg]
                                             a private_key_jwt client assertion
  oidc_rp.py assertions KEYFILE CLIENT_ID TOKEN_URL N
                                             N assertions, one a line, each
                                             naming a random kid (a flood)
  oidc_rp.py verify ID_TOKEN JWKS_FILE ISS AUD NONCE ACCESS_TOKEN
                                             the validated claims, or exit 1
"""
import json
import sys
import time

from authlib.common.security import generate_token
from authlib.jose import JsonWebKey, jwt
from authlib.jose.errors import JoseError
from authlib.oauth2.rfc6749.errors import OAuth2Error
from authlib.oauth2.rfc6749.parameters import (parse_authorization_code_response,
                                               prepare_grant_uri)
from authlib.oauth2.rfc7523 import private_key_jwt_sign
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken


def keygen(keyfile):
    # authlib writes a coordinate with a leading zero byte one byte short
    # (about one key in 128); RFC 7518 6.2.1.2 wants the full 32 bytes and
    # the gateway refuses anything else, so such a key is drawn again.
    while True:
        key = JsonWebKey.generate_key("EC", "P-256", is_private=True)
        d = key.as_dict(is_private=False)
        if len(d["x"]) == 43 and len(d["y"]) == 43:
            break
    with open(keyfile, "wb") as f:
        f.write(key.as_pem(is_private=True))
    pub = key.as_dict(is_private=False)
    pub.update({"kid": key.thumbprint(), "use": "sig", "alg": "ES256"})
    print(json.dumps({"keys": [pub]}))


def start(authz, client_id, redirect, *extra):
    state = generate_token(24)
    nonce = generate_token(24)
    verifier = generate_token(64)
    kw = dict(x.split("=", 1) for x in extra)
    url = prepare_grant_uri(authz, client_id, "code", redirect_uri=redirect, scope="openid",
                            state=state, nonce=nonce,
                            code_challenge=create_s256_code_challenge(verifier),
                            code_challenge_method="S256", **kw)
    print(json.dumps({"url": url, "state": state, "nonce": nonce, "verifier": verifier}))


def callback(location, state):
    try:
        params = parse_authorization_code_response(location, state=state)
    except OAuth2Error as e:
        print(json.dumps({"error": e.error}))
        sys.exit(1)
    print(json.dumps({"code": params["code"]}))


def assertion(keyfile, client_id, token_url, alg="ES256"):
    with open(keyfile, "rb") as f:
        key = JsonWebKey.import_key(f.read(), {"kty": "EC"})
    # A short life (the provider takes at most 300 s; authlib's default is an hour).
    tok = private_key_jwt_sign(key, client_id, token_url, alg=alg,
                               claims={"exp": int(time.time()) + 120},
                               header={"kid": key.thumbprint()})
    print(tok.decode() if isinstance(tok, bytes) else tok)


def assertions(keyfile, client_id, token_url, n):
    with open(keyfile, "rb") as f:
        key = JsonWebKey.import_key(f.read(), {"kty": "EC"})
    for _ in range(int(n)):
        tok = private_key_jwt_sign(key, client_id, token_url, alg="ES256",
                                   claims={"exp": int(time.time()) + 120},
                                   header={"kid": generate_token(16)})
        print(tok.decode() if isinstance(tok, bytes) else tok)


def verify(id_token, jwks_file, iss, aud, nonce, access_token):
    with open(jwks_file) as f:
        keys = JsonWebKey.import_key_set(json.load(f))
    try:
        claims = jwt.decode(id_token, keys, claims_cls=CodeIDToken,
                            claims_options={"iss": {"essential": True, "value": iss},
                                            "aud": {"essential": True, "value": aud}},
                            claims_params={"nonce": nonce, "access_token": access_token})
        claims.validate(leeway=30)
    except JoseError as e:
        print(json.dumps({"error": e.error, "description": str(e)}))
        sys.exit(1)
    out = dict(claims)
    out["_header"] = dict(claims.header)
    print(json.dumps(out))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    {"keygen": keygen, "start": start, "callback": callback, "assertion": assertion,
     "assertions": assertions, "verify": verify}[cmd](*args)
