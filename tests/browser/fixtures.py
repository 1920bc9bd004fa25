"""The browser tests' bridge to the Python test servers: a real slapd (tests/lib/slapd.py) and the
small OpenID Connect provider (tests/lib/oidc_provider.py), driven by fixtures.mjs.

One JSON request per line on stdin, one JSON answer per line on stdout:
    {"id": 1, "cmd": "slapd.start"}         ->  {"id": 1, "ok": true, "result": {...}}
    {"id": 2, "cmd": "nope"}                ->  {"id": 2, "ok": false, "error": "..."}
Commands (arguments in "args"):
    slapd.unavailable                       why slapd cannot run here, or null
    slapd.start                             {url, ldaps_url, ca_pem, other_ca_pem, suffix, reader_dn, reader_pw}
    slapd.add_person {uid, password, cn?, mail?, employee_type?}   {dn}
    slapd.add_group {cn, members}           {dn}
    slapd.stop / slapd.restart              the server goes away / comes back (same ports and tree)
    oidc.start {client_id?, redirect_uris?} {issuer, client_id, client_secret, ca_pem}
    oidc.set {user?, misbehave?}            the next sign-in's claims (null: the user says no) and
                                            the provider's misbehaviours (a list)
    oidc.requests                           {authorize: [...], token: [...]} as the provider saw them
Everything started here is stopped when stdin closes (the test process ended, however it ended).
"""
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
from slapd import READER_DN, READER_PW, SUFFIX, Slapd  # noqa: E402

slapd = None
op = None


def slapd_unavailable(_):
    return Slapd.unavailable()


def slapd_start(_):
    global slapd
    if slapd is None:
        why = Slapd.unavailable()
        if why:
            raise RuntimeError(why)
        slapd = Slapd().start()
    return {"url": slapd.url, "ldaps_url": slapd.ldaps_url, "ca_pem": slapd.ca_pem,
            "other_ca_pem": slapd.other_ca_pem, "suffix": SUFFIX, "reader_dn": READER_DN,
            "reader_pw": READER_PW}


def need_slapd():
    if slapd is None:
        raise RuntimeError("slapd.start first")
    return slapd


def slapd_add_person(a):
    return {"dn": need_slapd().add_person(a["uid"], a["password"], cn=a.get("cn"), mail=a.get("mail"),
                                          employee_type=a.get("employee_type"))}


def slapd_add_group(a):
    return {"dn": need_slapd().add_group(a["cn"], a.get("members") or [])}


def slapd_stop(_):
    need_slapd().stop()
    return True


def slapd_restart(_):
    d = need_slapd()
    if not d.running():
        d.start()
    return True


def oidc_start(a):
    global op
    from oidc_provider import OidcProvider
    if op is None:
        op = OidcProvider(client_id=a.get("client_id") or "bic-browser-client",
                          redirect_uris=a.get("redirect_uris")).start()
    return {"issuer": op.issuer, "client_id": op.client_id, "client_secret": op.client_secret,
            "ca_pem": op.ca_pem}


def need_op():
    if op is None:
        raise RuntimeError("oidc.start first")
    return op


def oidc_set(a):
    p = need_op()
    if "user" in a:
        p.user = a["user"]
    if "misbehave" in a:
        p.misbehave = set(a["misbehave"] or [])
    return True


def oidc_requests(_):
    p = need_op()
    return {"authorize": list(p.authorize_requests), "token": [r["form"] for r in p.token_requests]}


COMMANDS = {
    "slapd.unavailable": slapd_unavailable, "slapd.start": slapd_start,
    "slapd.add_person": slapd_add_person, "slapd.add_group": slapd_add_group,
    "slapd.stop": slapd_stop, "slapd.restart": slapd_restart,
    "oidc.start": oidc_start, "oidc.set": oidc_set, "oidc.requests": oidc_requests,
}


def main():
    try:
        for line in sys.stdin:
            if not line.strip():
                continue
            req = {}
            try:
                req = json.loads(line)
                fn = COMMANDS.get(req.get("cmd"))
                if fn is None:
                    raise RuntimeError("unknown command %r" % req.get("cmd"))
                ans = {"id": req.get("id"), "ok": True, "result": fn(req.get("args") or {})}
            except Exception as e:  # noqa: BLE001 - every failure goes back to the test
                ans = {"id": req.get("id"), "ok": False, "error": "%s: %s" % (type(e).__name__, e),
                       "trace": traceback.format_exc()[-2000:]}
            sys.stdout.write(json.dumps(ans) + "\n")
            sys.stdout.flush()
    finally:
        if slapd is not None:
            slapd.cleanup()
        if op is not None:
            op.stop()


if __name__ == "__main__":
    main()
