#!/usr/bin/env python3
"""Crash check: SIGKILL Strongbox repeatedly under create load, then prove that every
acknowledged create survived and that the blind indexes agree with the records.

    python3 bench/crash_check.py                          # SQLite, 5 kills
    python3 bench/crash_check.py --kills 10 --postgres-url postgres://postgres@127.0.0.1:5432/test

Each round runs `--workers` threads posting unique users for a random 0.5–2 s, kills
the server with SIGKILL, restarts it, and reads every user acknowledged so far by login
and by email. At the end the store itself is checked: every index entry points at a
live user and every user has exactly its two entries. Exits non-zero on any loss.
"""

import argparse
import http.client
import json
import os
import random
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import Store, build, log, mysql_args  # noqa: E402


def start(binary, store, env, workdir):
    server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", *store.args], env=env,
                              stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "server.log"), "a"), text=True)
    m = re.match(r"Strongbox listening on http://(\S+):(\d+)", server.stdout.readline())
    if not m:
        raise RuntimeError("server did not start")
    return server, m.group(1), int(m.group(2))


def request(host, port, token, method, path, body=None):
    conn = http.client.HTTPConnection(host, port, timeout=10)
    try:
        headers = {"X-Bunker-Token": token}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"null")
    finally:
        conn.close()


def sql_count(store, workdir, statement):
    if store.backend == "sqlite":
        import sqlite3
        c = sqlite3.connect(os.path.join(workdir, "data", "strongbox.sqlite3"))
        return c.execute(statement).fetchone()[0]
    if store.backend == "postgres":
        url = store.args[1]
        return int(subprocess.run(["psql", url, "-qAtc", statement], capture_output=True, text=True, check=True).stdout)
    out = subprocess.run(["mariadb", *mysql_args(store.admin_url), "-N", "-B", "-D", store.db, "-e", statement],
                         capture_output=True, text=True, check=True).stdout
    return int(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--kills", type=int, default=5)
    p.add_argument("--workers", type=int, default=8)
    p.add_argument("--postgres-url")
    p.add_argument("--mysql-url")
    args = p.parse_args()
    binary = build()
    backend, url = ("postgres", args.postgres_url) if args.postgres_url else \
        ("mysql", args.mysql_url) if args.mysql_url else ("sqlite", None)
    workdir = tempfile.mkdtemp(prefix="strongbox-crash-")
    store = Store(backend, url, workdir)
    token = str(uuid.uuid4())
    env = {**os.environ, "STRONGBOX_ROOT_KEY": secrets.token_hex(32), "STRONGBOX_ROOT_TOKEN": token,
           "STRONGBOX_LOG": "warn"}
    acked, lock = [], threading.Lock()
    try:
        subprocess.run([binary, "init", *store.args], env=env, check=True, stdout=subprocess.DEVNULL)
        server, host, port = start(binary, store, env, workdir)
        for kill in range(args.kills):
            stop = threading.Event()

            def worker(w):
                i = 0
                while not stop.is_set():
                    login = f"k{kill}-w{w}-{i}"
                    try:
                        status, body = request(host, port, token, "POST", "/v1/user",
                                               {"login": login, "email": f"{login}@crash.example", "i": i})
                    except (OSError, http.client.HTTPException):
                        return  # the server died mid-request: not acknowledged
                    if status != 200:
                        raise SystemExit(f"unexpected {status} {body}")
                    with lock:
                        acked.append((login, body["token"]))
                    i += 1

            threads = [threading.Thread(target=worker, args=(w,)) for w in range(args.workers)]
            for t in threads:
                t.start()
            time.sleep(random.uniform(0.5, 2.0))
            os.kill(server.pid, signal.SIGKILL)
            server.wait()
            stop.set()
            for t in threads:
                t.join()
            server, host, port = start(binary, store, env, workdir)
            lost = 0
            for login, tok in acked:
                s1, b1 = request(host, port, token, "GET", f"/v1/user/login/{login}")
                s2, b2 = request(host, port, token, "GET", f"/v1/user/email/{login}@crash.example")
                if s1 != 200 or s2 != 200 or b1["token"] != tok or b2["token"] != tok or b1["data"]["login"] != login:
                    lost += 1
            log(f"kill {kill + 1}/{args.kills}: {len(acked)} acknowledged creates so far, {lost} lost or inconsistent")
            if lost:
                raise SystemExit(1)
        server.terminate()
        server.wait()
        orphans = sql_count(store, workdir, "SELECT COUNT(*) FROM user_index i LEFT JOIN users u ON "
                                            "u.tenant = i.tenant AND u.token = i.token WHERE u.token IS NULL")
        users = sql_count(store, workdir, "SELECT COUNT(*) FROM users")
        entries = sql_count(store, workdir, "SELECT COUNT(*) FROM user_index")
        log(f"store: {users} users (>= {len(acked)} acknowledged), {entries} index entries, {orphans} orphans")
        if orphans or entries != 2 * users or users < len(acked):
            raise SystemExit("indexes disagree with records")
        print(f"crash check passed on {backend}: {args.kills} SIGKILLs under load, "
              f"{len(acked)} acknowledged creates, none lost")
    finally:
        store.drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
