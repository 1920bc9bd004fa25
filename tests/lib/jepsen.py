"""A small Jepsen-style toolkit for BIC's fault tests (tests/fault/): a history of operations,
a nemesis that breaks the stack's daemons, and the checkers that judge a run.

History. Every client operation is recorded twice, Jepsen's way: an `invoke` when it starts and
one completion when it ends:
  ok    the operation certainly happened (the API acknowledged it)
  fail  the operation certainly did not happen (a definite refusal: the transaction rolled back)
  info  the outcome is unknown (5xx, timeout, connection error): it may or may not have happened
Times are time.monotonic() seconds from the start of the history. The nemesis records its faults
in the same history (process "nemesis"), so recovery times come from the one timeline.

The allocation checker proves, from the history alone and from the final database state alone:
  * no desktop was held by two users at once, and no user held two desktops of one pool at once;
  * every acknowledged assignment exists (the session, its user and desktop), is still live when
    it was never asked to end, and every acknowledged log-off is durable.
"""
import json
import os
import threading
import time


class History:
    def __init__(self):
        self.t0 = time.monotonic()
        self.ops = []  # dicts: index, process, type, f, value, time
        self.lock = threading.Lock()

    def now(self):
        return time.monotonic() - self.t0

    def _add(self, process, type_, f, value):
        with self.lock:
            op = {"index": len(self.ops), "process": process, "type": type_, "f": f, "value": value,
                  "time": round(self.now(), 6)}
            self.ops.append(op)
            return op

    def invoke(self, process, f, value=None):
        return self._add(process, "invoke", f, value)

    def complete(self, invoked, type_, value=None):
        assert type_ in ("ok", "fail", "info"), type_
        return self._add(invoked["process"], type_, invoked["f"], value)

    def pairs(self):
        """(invoke, completion) for every client operation; completion None if it never ended."""
        open_ = {}
        out = []
        for op in self.ops:
            if op["type"] == "invoke":
                open_[op["process"]] = op
            else:
                inv = open_.pop(op["process"], None)
                if inv is not None:
                    out.append((inv, op))
        out += [(inv, None) for inv in open_.values()]
        return out

    def save(self, path):
        with open(path, "w") as f:
            for op in self.ops:
                f.write(json.dumps(op, sort_keys=True) + "\n")


# ---- the allocation checker ----

def _holds(history, end_time):
    """Certain-hold intervals from the history: [ack of a connect that returned session s on desktop
    d, invocation of the first log-off of s after it). A user certainly holds d in that window:
    the broker acknowledged the assignment and nothing the user did could have ended it (the test
    pools have no policy timeouts). Returns (holds, errors)."""
    errors = []
    session_owner = {}  # session -> (user, desktop, pool)
    acks = []  # (ack time, user, session, desktop, pool)
    logoffs = {}  # session -> sorted invoke times
    for inv, done in history.pairs():
        if inv["process"] == "nemesis" or done is None:
            if inv["f"] == "logoff" and inv["value"]:
                logoffs.setdefault(inv["value"]["session"], []).append(inv["time"])
            continue
        if inv["f"] == "connect" and done["type"] == "ok":
            v = done["value"]
            key = (inv["process"], v["desktop"], v["pool"])
            prev = session_owner.setdefault(v["session"], key)
            if prev != key:
                errors.append("session %d acknowledged as %r and as %r" % (v["session"], prev, key))
            acks.append((done["time"], inv["process"], v["session"], v["desktop"], v["pool"]))
        elif inv["f"] == "logoff":
            logoffs.setdefault(inv["value"]["session"], []).append(inv["time"])
    holds = {}  # session -> [start, end, user, desktop, pool]
    for t, user, s, d, pool in sorted(acks):
        if s in holds:
            continue  # a later connect that reused the live session: the hold began earlier
        end = min([x for x in logoffs.get(s, []) if x > t], default=end_time)
        holds[s] = [t, end, user, d, pool]
    return holds, errors


def _overlaps(intervals, key, owner, label):
    """intervals: lists whose [0] and [1] are start and end; reports every two intervals of the
    same key(iv) but of different owner(iv) that overlap (a half-open [start, end) each)."""
    errors = []
    groups = {}
    for iv in intervals:
        groups.setdefault(key(iv), []).append(iv)
    for k, ivs in groups.items():
        ivs.sort(key=lambda x: x[0])
        for i, a in enumerate(ivs):
            for b in ivs[i + 1:]:
                if b[0] >= a[1]:
                    break
                if owner(a) != owner(b):
                    errors.append("%s %r: %r and %r overlap" % (label, k, a, b))
    return errors


def check_allocation(history, db_sessions, db_desktops, end_time=None):
    """history: a History; db_sessions: dicts (id, user_id, pool_id, desktop_id, state, started_at,
    ended_at: seconds, ended_at None while live) of every session of the test pools; db_desktops:
    {desktop id: assigned user id or None}. Returns a dict: valid, errors, and counts."""
    end_time = history.now() if end_time is None else end_time
    holds, errors = _holds(history, end_time)
    hold_list = list(holds.values())
    # from the history: a desktop with two holders at once; a user with two desktops of a pool
    errors += ["history: " + e for e in _overlaps(hold_list, lambda h: h[3], lambda h: h[2],
                                                  "desktop held by two users at once:")]
    sess = [h + [s] for s, h in holds.items()]  # [start, end, user, desktop, pool, session]
    errors += ["history: " + e for e in _overlaps(sess, lambda h: (h[2], h[4]), lambda h: h[5],
                                                  "user (user, pool) held two sessions at once:")]
    # from the database: the same, over every session it recorded (ended ones included)
    inf = float("inf")
    db_iv = [[s["started_at"], s["ended_at"] if s["ended_at"] is not None else inf, s["user_id"],
              s["desktop_id"], s["pool_id"], s["id"]] for s in db_sessions if s["desktop_id"]]
    errors += ["database: " + e for e in _overlaps(db_iv, lambda x: x[3], lambda x: x[2],
                                                   "desktop held by two users at once:")]
    errors += ["database: " + e for e in _overlaps(db_iv, lambda x: (x[2], x[4]), lambda x: x[5],
                                                   "user (user, pool) held two sessions at once:")]
    live = [s for s in db_sessions if s["ended_at"] is None]
    for s in live:
        if s["desktop_id"] and db_desktops.get(s["desktop_id"]) != s["user_id"]:
            errors.append("database: live session %d of user %d, but desktop %s is assigned to %r"
                          % (s["id"], s["user_id"], s["desktop_id"], db_desktops.get(s["desktop_id"])))
    live_desktops = {s["desktop_id"] for s in live}
    leaked = [d for d, u in db_desktops.items() if u is not None and d not in live_desktops]
    for d in leaked:
        errors.append("database: floating desktop %d is assigned to user %d without a live session"
                      % (d, db_desktops[d]))
    # every acknowledged assignment exists; those never asked to end are still live
    by_id = {s["id"]: s for s in db_sessions}
    acked_logoff = {inv["value"]["session"] for inv, done in history.pairs()
                    if inv["f"] == "logoff" and done is not None and done["type"] == "ok"}
    for sid, (start, end, user, desktop, pool) in holds.items():
        s = by_id.get(sid)
        if s is None:
            errors.append("acknowledged session %d (user %d, desktop %d) is not in the database"
                          % (sid, user, desktop))
            continue
        if (s["user_id"], s["desktop_id"], s["pool_id"]) != (user, desktop, pool):
            errors.append("acknowledged session %d was (user %d, desktop %d, pool %d); the database "
                          "says (%d, %s, %s)" % (sid, user, desktop, pool, s["user_id"], s["desktop_id"],
                                                 s["pool_id"]))
        if end >= end_time and s["ended_at"] is not None:
            errors.append("acknowledged session %d was never logged off, but the database ended it"
                          % sid)
    for sid in acked_logoff:
        s = by_id.get(sid)
        if s is not None and s["ended_at"] is None:
            errors.append("log-off of session %d was acknowledged, but it is still live" % sid)
    counts = {}
    for inv, done in history.pairs():
        if inv["process"] == "nemesis":
            continue
        k = "%s %s" % (inv["f"], done["type"] if done else "open")
        counts[k] = counts.get(k, 0) + 1
    return {"valid": not errors, "errors": errors, "counts": counts, "holds": len(holds),
            "db_sessions": len(db_sessions), "leaked": len(leaked)}


# ---- recovery ----

def recovery_times(history):
    """For every fault the nemesis recorded: when it started, when it was healed, how long after
    the heal the first client operation was acknowledged (ok), and how many operations ended
    info or fail in between. A fault is an invoke/ok pair of the nemesis; its value holds
    'healed_at' (the history time of the heal: restart issued, SIGCONT sent)."""
    faults = [(inv, done) for inv, done in history.pairs() if inv["process"] == "nemesis" and done]
    ops = [(inv, done) for inv, done in history.pairs() if inv["process"] != "nemesis" and done]
    out = []
    for inv, done in faults:
        start, healed = inv["time"], done["value"]["healed_at"]
        firsts = sorted(d["time"] for i, d in ops if d["type"] == "ok" and d["time"] > healed)
        first = firsts[0] if firsts else None
        bad = sum(1 for i, d in ops if d["type"] != "ok" and inv["time"] <= d["time"] <= (first or 1e18))
        out.append({"fault": inv["f"], "started": round(start, 3), "healed": round(healed, 3),
                    "fault_s": round(healed - start, 3),
                    "recovery_s": None if first is None else round(first - healed, 3),
                    "outage_s": None if first is None else round(first - start, 3),
                    "not_ok_ops": bad, "detail": done["value"].get("detail", "")})
    return out


def percentile(values, p):
    if not values:
        return None
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(round(p / 100.0 * (len(v) - 1)))))
    return v[k]


def artifacts_dir():
    d = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "artifacts")
    os.makedirs(d, exist_ok=True)
    return d
