#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/ (tests/fuzz/corpus/<target>/): small, meaningful inputs
for each target, made from the real route table (`bicd routes`) where there is one. The seeds are
committed; run this again after the route table or an input format changes:
    python3 tests/fuzz/make_seeds.py [build/bicd]
Keys and clocks here must match tests/fuzz/fuzz_bicd.h (FZ_TOKEN_KEY, FZ_NOW)."""
import base64
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KEY = b"bic-fuzz-token-key-0123456789abcdef0123456789"
NOW = 1790000000
UUID = "3f1c2a4e-8b7d-4c21-9a0e-5d6f7a8b9c0d"
TICKET = "Q2hhbmdlZC1ieS10aGUtZnV6emVyLXRpY2tldC0wMDA"  # 43 characters, base64url


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(header, claims, key=KEY):
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = hmac.new(key, ("%s.%s" % (h, p)).encode(), hashlib.sha256).digest()
    return "%s.%s.%s" % (h, p, b64u(sig))


def claims(**kw):
    c = {"iss": "bic", "aud": "bic-portal", "sub": "42", "sid": 7, "iat": NOW - 10, "nbf": NOW - 10,
         "exp": NOW + 900}
    c.update(kw)
    return {k: v for k, v in c.items() if v is not None}


def write(target, seeds):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    for i, s in enumerate(seeds):
        if isinstance(s, str):
            s = s.encode()
        with open(os.path.join(d, "seed-%03d" % i), "wb") as f:
            f.write(s)


def sample(field):
    """A value that obeys a field of the route table."""
    t = field["type"]
    if t == "string":
        if field["choices"]:
            return field["choices"][0]
        n = max(field["min"], 1 if field["required"] else 0, 3)
        if field["max"]:
            n = min(n, field["max"])
        return ("abcdefghij" * 10)[:n]
    if t == "integer":
        return field["min"] if field["min"] > 0 else 1 if field["max"] >= 1 else field["min"]
    if t == "boolean":
        return True
    if t == "string[]":
        return ["10.0.0.0/8"][:max(1, field["min"])] if field["max"] != 0 or True else []
    if t == "integer[]":
        return [1] * max(1, field["min"])
    if t == "object":
        return {}
    return []


def request(method, path, query="", cookie="", origin="", csrf="", auth="", ctype="", remote="",
            ticket="", upload="", body=""):
    return "\n".join([method, path, query, cookie, origin, csrf, auth, ctype, remote, ticket, upload]) + "\n" + body


def main():
    bicd = sys.argv[1] if len(sys.argv) > 1 else os.path.join(REPO, "build", "bicd")
    routes = json.loads(subprocess.run([bicd, "routes"], check=True, capture_output=True, text=True).stdout)
    tok = jwt({"alg": "HS256", "typ": "JWT"}, claims())
    csrf = "c" * 43
    cookies = "__Host-bic_session=%s; __Host-bic_csrf=%s; __Host-bic_refresh=%s" % (tok, csrf, "r" * 43)

    # ---- fuzz_request: one request per route (ids filled in), and the awkward cases
    req = []
    for r in routes:
        path = re.sub(r"\{[a-z_]+\}", "12", r["path"])
        body = json.dumps({f["name"]: sample(f) for f in r["fields"] if f["required"]}) if r["fields"] else ""
        auth = "Bearer 3.abcdefabcdef" if r["role"] in ("agent", "scraper") else ""
        req.append(request(r["method"], path, "limit=10&after=5", cookies, "https://bic.test", csrf, auth,
                           "application/json" if body else "", "127.0.0.1", "", "", body))
    req += [
        request("GET", "/api/v1/audit", "q=%41%2&actor=a+b&limit=&after=-1&target_id=0x10"),
        request("GET", "/api/v1/users/0012"), request("GET", "/api/v1/users/+5"),
        request("GET", "/api/v1/users/9223372036854775808"), request("GET", "/api/v1/users//mfa"),
        request("OPTIONS", "/api/v1/health"), request("GET", "/api/v1/pools/1/connect"),
        request("GET", "/_bic/console-check", ticket=TICKET, cookie=cookies, origin="https://bic.test"),
        request("GET", "/_bic/console-check", ticket="short"),
        request("PUT", "/api/v1/images/3/upload", query="notes=x%20y", upload="1", cookie=cookies),
        request("GET", "/api/v1/auth/oidc/callback", query="code=abc&state=%00x&iss=https%3A%2F%2Fidp"),
        request("POST", "/api/v1/auth/login", cookie="__Host-bic_csrf=" + csrf, origin="https://bic.test",
                csrf=csrf, ctype="application/json; charset=utf-8", body='{"username":"u","password":"p"}'),
        request("POST", "/api/v1/agent/heartbeat", auth="Bearer 99999999999999999999.x", ctype="application/json",
                body="{}"),
        request("GET", "/metrics", auth="Bearer test-metrics-token", remote="192.0.2.7"),
        request("GET", "/metrics", remote="::ffff:127.0.0.1"),
    ]
    write("fuzz_request", req)

    # ---- fuzz_json_body: a valid body and a few near misses for every route with fields
    body = []
    for r in routes:
        if not r["fields"]:
            continue
        name = "%s %s\n" % (r["method"], r["path"])
        full = {f["name"]: sample(f) for f in r["fields"]}
        req_only = {f["name"]: sample(f) for f in r["fields"] if f["required"]}
        body.append(name + json.dumps(full))
        body.append(name + json.dumps(req_only))
        if r["fields"]:
            f = r["fields"][0]
            bad = dict(req_only)
            bad[f["name"]] = None
            body.append(name + json.dumps(bad))
    body += ["POST /api/v1/users\n[1,2]", "POST /api/v1/users\n{\"a\":1,\"a\":2}",
             "POST /api/v1/users\n{\"username\":\"x\\u0000y\"}", "POST /api/v1/users\n{\"username\":\"\\u0085\"}",
             "POST /api/v1/pools\n{\"min_size\": 1e400}"]
    write("fuzz_json_body", body)

    # ---- fuzz_token
    tk = ["t" + tok,
          "t" + jwt({"alg": "HS256"}, claims(exp=NOW - 1)),
          "t" + jwt({"alg": "HS256"}, claims(nbf=NOW + 60)),
          "t" + jwt({"alg": "HS256"}, claims(iss="other")),
          "t" + jwt({"alg": "HS256"}, claims(aud=["bic-portal", "x"])),
          "t" + jwt({"alg": "HS256"}, claims(sub="0")),
          "t" + jwt({"alg": "HS256"}, claims(sub="12abc")),
          "t" + jwt({"alg": "HS256"}, claims(sid=None)),
          "t" + jwt({"alg": "HS256"}, claims(), key=b"another-key-another-key-another-key!!"),
          "t" + b64u(b'{"alg":"none"}') + "." + b64u(json.dumps(claims()).encode()) + ".",
          "t" + b64u(b'{"alg":"HS512"}') + "." + b64u(json.dumps(claims()).encode()) + "." + "A" * 86,
          "t" + "a.b.c", "t" + "." * 3, "t" + "x" * 3000,
          "s" + '{"alg":"HS256","typ":"JWT"}\n' + json.dumps(claims()),
          "s" + '{"alg":"HS256"}\n' + json.dumps(claims(exp="soon", sid=2 ** 63)),
          "s" + '{"alg":"HS256"}\n' + json.dumps(claims(sub=42, sid=-1)),
          "s" + '{"alg":"HS256"}\n' + json.dumps(claims(exp=2 ** 62, nbf=-2 ** 62)),
          "s" + '{"alg":"RS256","kid":"x"}\n' + json.dumps(claims()),
          "s" + '{"alg":"HS256"}\n[1,2,3]',
          "s" + '{"alg":"HS256"}\n{"sub":"1","sid":1,"exp":1790000900,"nbf":1,"iss":"bic","aud":"bic-portal","iss":"x"}',
          b"r" + bytes([42, 0, 0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0x84, 0x03, 0, 0]),
          "c" + TICKET + "\n" + cookies + "\nhttps://bic.test",
          "c" + TICKET + "\n\nhttps://evil.test", "c" + "A" * 42 + "\n\n", "c" + "\n" + cookies + "\n",
          "c" + TICKET + "\n__Host-bic_session=" + jwt({"alg": "HS256"}, claims(exp=NOW - 1)) + "\nnull"]
    write("fuzz_token", tk)

    # ---- fuzz_agent_task
    def task(type_, params, task_id=5, **kw):
        b = {"task_id": task_id, "server_id": 7, "type": type_, "params": params, "issued_at": NOW,
             "nonce": "bm9uY2Utbm9uY2Utbm9uY2UtMDE"}
        b.update(kw)
        return json.dumps(b)

    create = {"uuid": UUID, "name": "pool-a-01", "vcpus": 2, "memory_mib": 1024, "disk_gib": 20,
              "base": "/var/lib/bic/images/bic-image-3.qcow2", "overlay": "bic-desk-1.qcow2",
              "nic": {"type": "virtio", "mac": "52:54:00:12:34:56"}, "start": True}
    sriov = dict(create, nic={"type": "sriov", "vf_pci": "0000:3b:10.1", "pf": "ens1f0", "vf_index": 1,
                              "mac": "52:54:00:12:34:57", "vlan": 100})
    ag = ["T" + task("domain.start", {"uuid": UUID}), "T" + task("domain.destroy", {"uuid": UUID}),
          "T" + task("inventory.refresh", None), "T" + task("desktop.create", create),
          "T" + task("desktop.create", sriov),
          "T" + task("desktop.create", dict(create, name="a<b>&'\"c")),
          "T" + task("desktop.refresh", {k: create[k] for k in ("uuid", "base", "overlay", "disk_gib", "start")}),
          "T" + task("desktop.delete", {"uuid": UUID, "overlay": "bic-desk-1.qcow2"}),
          "T" + task("desktop.set_spec", {"uuid": UUID, "vcpus": 4, "memory_mib": 2048}),
          "T" + task("desktop.capture", {"uuid": UUID, "overlay": "bic-desk-1.qcow2", "version_id": 9,
                                         "upload_path": "/api/v1/agent/image-versions/9/content"}),
          "T" + task("image.fetch", {"version_id": 3, "path": "/api/v1/agent/image-versions/3/content",
                                     "sha256": "ab" * 32, "size": 16777216, "volume": "bic-image-3.qcow2"}),
          "T" + task("domain.start", {"uuid": UUID}, issued_at=NOW - 121),
          "T" + task("domain.start", {"uuid": UUID}, server_id=8),
          "T" + task("domain.start", {"uuid": UUID}, extra=1),
          "C" + task("desktop.console", {"uuid": UUID, "password": "abcd1234", "disconnect": True}, task_id=0),
          "C" + task("domain.start", {"uuid": UUID}, task_id=0),
          "S" + "A" * 86 + "==\n" + task("domain.start", {"uuid": UUID}),
          "S" + "not base64!\n{}",
          b"P\x01/s/0/v1/tasks", b"P\x03/s/2/v1/call", b"P\x00/v1/tasks", b"P\x02/s/01/v1/tasks",
          b"P\x02/s/999999999/v1/call"]
    write("fuzz_agent_task", ag)
    print("seeds: %s" % ", ".join("%s %d" % (t, len(os.listdir(os.path.join(HERE, "corpus", t))))
                                  for t in sorted(os.listdir(os.path.join(HERE, "corpus")))))


if __name__ == "__main__":
    main()
