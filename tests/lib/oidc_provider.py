"""A small but real OpenID Connect provider for the API tests (tests/api/test_oidc.py).

It serves HTTPS on 127.0.0.1 with a certificate from a CA it makes itself (give `ca_pem` to bicd),
and speaks the parts of OpenID Connect that BIC uses:

  GET  /.well-known/openid-configuration   discovery
  GET  /jwks                               the public signing keys (RSA 2048, RS256)
  GET  /authorize                          authorization code flow: checks client_id, the
                                           registered redirect_uri, scope "openid" and a PKCE
                                           S256 code_challenge, then approves `user` at once and
                                           redirects back with code and state (error=access_denied
                                           when user is None)
  POST /token                              client authentication (client_secret_basic or
                                           client_secret_post), the code (single use, 60 s), the
                                           same redirect_uri, and the PKCE code_verifier; answers
                                           an ID token signed RS256 with python3-cryptography

`misbehave` is a set of switches that make it lie in one way each (see MISBEHAVIOURS); every
request is recorded (`authorize_requests`, `token_requests`) so tests can check what bicd sent.
"""
import base64
import datetime
import hashlib
import hmac
import http.server
import ipaddress
import json
import os
import secrets
import shutil
import socketserver
import ssl
import tempfile
import threading
import time
import urllib.parse

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID

MISBEHAVIOURS = {
    # ID token
    "wrong_nonce": "the ID token carries another nonce",
    "wrong_aud": "the ID token is for another client",
    "multi_aud_no_azp": "aud lists the client and another, without azp",
    "expired": "exp lies 200 s in the past",
    "issued_in_future": "iat lies an hour ahead",
    "other_key": "signed by a key that is not in the key set, under the published kid",
    "unknown_kid": "signed by a key that is not in the key set, under a kid nobody knows",
    "alg_none": "alg none and no signature",
    "hs256_pubkey": "HS256 with the public key (PEM) as the HMAC secret",
    "wrong_issuer": "iss names another issuer",
    "no_sub": "no sub claim",
    # token endpoint
    "token_error": "the token endpoint refuses with invalid_grant",
    "no_id_token": "the token endpoint answers without an id_token",
    # discovery and keys (for "test connection")
    "discovery_404": "no discovery document",
    "discovery_not_json": "the discovery document is HTML",
    "discovery_wrong_issuer": "the discovery document names another issuer",
    "discovery_no_s256": "PKCE methods without S256",
    "jwks_no_rs256": "the key set holds only an EC key",
}


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _int_bytes(n):
    return n.to_bytes((n.bit_length() + 7) // 8, "big")


def rsa_jwk(key, kid):
    pub = key.public_key().public_numbers()
    return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "n": b64url(_int_bytes(pub.n)),
            "e": b64url(_int_bytes(pub.e))}


def sign_jwt(header, payload, key=None, hmac_key=None):
    """A compact JWS: RS256 with key, HS256 with hmac_key, or no signature (alg none)."""
    h = b64url(json.dumps(header, separators=(",", ":")).encode())
    p = b64url(json.dumps(payload, separators=(",", ":")).encode())
    signing_input = (h + "." + p).encode()
    if key is not None:
        sig = key.sign(signing_input, padding.PKCS1v15(), hashes.SHA256())
    elif hmac_key is not None:
        sig = hmac.new(hmac_key, signing_input, hashlib.sha256).digest()
    else:
        sig = b""
    return h + "." + p + "." + b64url(sig)


def _make_tls(directory):
    """A CA and a server certificate for 127.0.0.1 and localhost; returns (ca_pem, cert, key)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "BIC test OIDC CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=2))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(ca_key, hashes.SHA256()))
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    ca_pem = ca.public_bytes(serialization.Encoding.PEM).decode()
    with open(os.path.join(directory, "ca.pem"), "w") as f:
        f.write(ca_pem)
    return ca_pem, cert_path, key_path


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class OidcProvider:
    """The provider; start() it, point a BIC provider at `issuer` with `ca_pem`, stop() it."""

    def __init__(self, client_id="bic-test-client", client_secret=None,
                 token_auth="client_secret_basic", redirect_uris=None):
        self.client_id = client_id
        self.client_secret = client_secret or "secret-" + secrets.token_urlsafe(16)
        self.token_auth = token_auth  # what the token endpoint insists on
        self.redirect_uris = list(redirect_uris or [])  # empty: any https:// address
        self.user = None  # the claims of whoever "signs in" next (dict with at least sub)
        self.misbehave = set()
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = "k1"
        self.stray_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.codes = {}
        self.authorize_requests = []
        self.token_requests = []
        self.lock = threading.Lock()
        self.dir = tempfile.mkdtemp(prefix="bic-oidc-")
        self.ca_pem, cert, key = _make_tls(self.dir)
        self.ssl = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ssl.load_cert_chain(cert, key)
        self.httpd = None
        self.thread = None
        self.port = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self):
        provider = self

        class Handler(_Handler):
            op = provider

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.socket = self.ssl.wrap_socket(self.httpd.socket, server_side=True)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def issuer(self):
        return "https://127.0.0.1:%d" % self.port

    def rotate_key(self):
        """A new signing key under a new kid; the old one leaves the key set."""
        with self.lock:
            self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.kid = "k%d" % (int(self.kid[1:]) + 1)

    # --- documents ---------------------------------------------------------------------------
    def discovery(self):
        d = {
            "issuer": self.issuer + ("/elsewhere" if "discovery_wrong_issuer" in self.misbehave else ""),
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["plain"] if "discovery_no_s256" in self.misbehave else ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
            "scopes_supported": ["openid", "profile", "email", "groups"],
        }
        return d

    def jwks(self):
        if "jwks_no_rs256" in self.misbehave:
            pub = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
            return {"keys": [{"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig", "alg": "ES256",
                              "x": b64url(pub.x.to_bytes(32, "big")), "y": b64url(pub.y.to_bytes(32, "big"))}]}
        with self.lock:
            return {"keys": [rsa_jwk(self.key, self.kid)]}

    def id_token(self, claims, nonce):
        now = int(time.time())
        m = self.misbehave
        payload = {"iss": self.issuer, "aud": self.client_id, "iat": now, "exp": now + 300,
                   "auth_time": now, "nonce": nonce}
        payload.update(claims)
        if "wrong_nonce" in m:
            payload["nonce"] = "not-" + nonce
        if "wrong_aud" in m:
            payload["aud"] = "someone-else"
        if "multi_aud_no_azp" in m:
            payload["aud"] = [self.client_id, "someone-else"]
        if "expired" in m:
            payload["iat"], payload["exp"] = now - 400, now - 200
        if "issued_in_future" in m:
            payload["iat"] = now + 3600
        if "wrong_issuer" in m:
            payload["iss"] = self.issuer + "/elsewhere"
        if "no_sub" in m:
            payload.pop("sub", None)
        with self.lock:
            key, kid = self.key, self.kid
        header = {"alg": "RS256", "typ": "JWT", "kid": kid}
        if "other_key" in m:
            return sign_jwt(header, payload, key=self.stray_key)
        if "unknown_kid" in m:
            return sign_jwt(dict(header, kid="nobody-knows"), payload, key=self.stray_key)
        if "alg_none" in m:
            return sign_jwt({"alg": "none", "typ": "JWT"}, payload)
        if "hs256_pubkey" in m:
            pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                                serialization.PublicFormat.SubjectPublicKeyInfo)
            return sign_jwt({"alg": "HS256", "typ": "JWT", "kid": kid}, payload, hmac_key=pem)
        return sign_jwt(header, payload, key=key)


def _pkce(verifier):
    return b64url(hashlib.sha256(verifier.encode()).digest())


class _Handler(http.server.BaseHTTPRequestHandler):
    op = None  # the OidcProvider, set by a subclass in start()

    def log_message(self, *args):
        pass

    def answer(self, status, body=None, headers=None, ctype="application/json"):
        data = b""
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        op = self.op
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/.well-known/openid-configuration":
            if "discovery_404" in op.misbehave:
                return self.answer(404, {"error": "not found"})
            if "discovery_not_json" in op.misbehave:
                return self.answer(200, "<html><body>Sign in</body></html>", ctype="text/html")
            return self.answer(200, op.discovery())
        if url.path == "/jwks":
            return self.answer(200, op.jwks())
        if url.path == "/authorize":
            return self.authorize(urllib.parse.parse_qs(url.query))
        return self.answer(404, {"error": "not_found"})

    def authorize(self, q):
        op = self.op
        one = {k: v[0] for k, v in q.items()}
        op.authorize_requests.append(one)
        redirect = one.get("redirect_uri", "")
        if one.get("client_id") != op.client_id:
            return self.answer(400, {"error": "invalid_client"})
        if (op.redirect_uris and redirect not in op.redirect_uris) or not redirect.startswith("https://"):
            return self.answer(400, {"error": "invalid_request", "error_description": "redirect_uri not registered"})

        def back(**params):
            params["state"] = one.get("state", "")
            sep = "&" if "?" in redirect else "?"
            return self.answer(302, headers={"Location": redirect + sep + urllib.parse.urlencode(params)})

        if one.get("response_type") != "code":
            return back(error="unsupported_response_type")
        if "openid" not in one.get("scope", "").split():
            return back(error="invalid_scope")
        if not one.get("code_challenge") or one.get("code_challenge_method") != "S256":
            return back(error="invalid_request", error_description="PKCE with S256 is required")
        if op.user is None:
            return back(error="access_denied", error_description="the user said no")
        code = secrets.token_urlsafe(24)
        with op.lock:
            op.codes[code] = {"redirect_uri": redirect, "nonce": one.get("nonce", ""),
                              "challenge": one["code_challenge"], "claims": dict(op.user),
                              "expires": time.time() + 60, "used": False}
        return back(code=code)

    def do_POST(self):
        op = self.op
        if urllib.parse.urlsplit(self.path).path != "/token":
            return self.answer(404, {"error": "not_found"})
        n = int(self.headers.get("Content-Length") or 0)
        form = {k: v[0] for k, v in urllib.parse.parse_qs(self.rfile.read(n).decode()).items()}
        auth = self.headers.get("Authorization")
        op.token_requests.append({"form": dict(form), "authorization": auth})

        def refuse(error, desc, status=400):
            return self.answer(status, {"error": error, "error_description": desc})

        # client authentication
        if op.token_auth == "client_secret_basic":
            if not auth or not auth.startswith("Basic "):
                return refuse("invalid_client", "client_secret_basic expected", 401)
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
            if (urllib.parse.unquote_plus(user), urllib.parse.unquote_plus(pw)) != (op.client_id, op.client_secret):
                return refuse("invalid_client", "wrong client credentials", 401)
        elif op.token_auth == "client_secret_post":
            if auth or (form.get("client_id"), form.get("client_secret")) != (op.client_id, op.client_secret):
                return refuse("invalid_client", "client_secret_post expected", 401)
        elif form.get("client_id") != op.client_id:
            return refuse("invalid_client", "unknown client", 401)
        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "only authorization_code")
        with op.lock:
            grant = op.codes.get(form.get("code", ""))
            fresh = grant is not None and not grant["used"] and grant["expires"] > time.time()
            if grant is not None:
                grant["used"] = True
        if not fresh:
            return refuse("invalid_grant", "unknown, used or expired code")
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return refuse("invalid_grant", "redirect_uri differs from the authorization request")
        verifier = form.get("code_verifier")
        if not verifier or _pkce(verifier) != grant["challenge"]:
            return refuse("invalid_grant", "PKCE verification failed")
        if "token_error" in op.misbehave:
            return refuse("invalid_grant", "the test told me to refuse")
        body = {"access_token": secrets.token_urlsafe(24), "token_type": "Bearer", "expires_in": 300}
        if "no_id_token" not in op.misbehave:
            body["id_token"] = op.id_token(grant["claims"], grant["nonce"])
        return self.answer(200, body)
