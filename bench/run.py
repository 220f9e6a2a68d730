#!/usr/bin/env python3
"""Strongbox load benchmark.

Builds the release binary, and for each backend (SQLite always; PostgreSQL and
MySQL/MariaDB when their URLs are given) initializes a fresh store, bulk-loads N users
with `strongbox import`, starts `strongbox serve`, and drives each scenario with wrk
at several connection counts. Reports req/s, p50/p99 latency, non-2xx responses,
server CPU and peak RSS, and writes the tables to docs/benchmarks.md.

    python3 bench/run.py                                  # SQLite, 10,000 users
    python3 bench/run.py --users 1000000 --duration 20
    python3 bench/run.py --postgres-url postgres://postgres@127.0.0.1:5432/test \\
                         --mysql-url mysql://root@127.0.0.1:3306/test
    python3 bench/run.py --tls                            # the same over HTTPS

The two ceiling rows are the same server answering `GET /v1/status` (no store, no
crypto) and `GET /bench/lookup/{token}` (a primary-key read with no decryption and no
audit event); each vault operation is shown as a fraction of the point-lookup ceiling.
"""

import argparse
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WRK_SCRIPT = os.path.join(ROOT, "bench", "wrk.lua")
SCENARIOS = ["status", "probe", "get_token", "get_email", "post", "put",
             "v2_get_token", "v2_get_email", "v2_post", "v2_put", "t_get_token",
             "v2_token_create", "v2_token_get", "x_get_token", "r_get_token"]
# Not run by default: `v2_search` (serve with --serve-arg=--search=true), and the
# four vault operations in turn (`--scenarios mixed`, and what
# `--rotate-root-key`, `--rotate-kek` and `--rotate-index` run while they rotate).
LABELS = {
    "status": "ceiling: GET /v1/status",
    "probe": "ceiling: point lookup, no crypto",
    "get_token": "GET /v1/user/token/{t}",
    "get_email": "GET /v1/user/email/{e}",
    "post": "POST /v1/user",
    "put": "PUT /v1/user/token/{t}",
    "mixed": "mixed GET/GET/PUT/POST",
    "v2_get_token": "v2 UserGet by token",
    "v2_get_email": "v2 UserGet by email",
    "v2_post": "v2 UserCreate",
    "v2_put": "v2 UserUpdate",
    "v2_bulk": "v2 UserCreateBulk, 1,000 per call",
    "t_get_token": "v2 UserGet by token, in a tenant",
    "v2_token_create": "v2 TokenCreate (card)",
    "v2_token_get": "v2 TokenGet (card)",
    "r_get_token": "v2 UserGet by token, role token",
    "x_get_token": "v2 UserGet by token, own token",
    "v2_search": "v2 UserSearch, email with a typo",
}
# People given an access token of their own for `x_get_token` (XTokenCreateForUser).
OWN_TOKENS = 2_000
# Card tokens made for `v2_token_get` (through TokenCreateBulk).
FPT_TOKENS = 10_000
# Users created in the tenant of `t_get_token` (through UserCreateBulk).
TENANT_USERS = 10_000
CLK_TCK = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def ensure_wrk():
    if shutil.which("wrk"):
        return
    log("installing wrk from Debian's packages")
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=False, stdout=subprocess.DEVNULL)
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)


def build():
    log("building the release binary")
    subprocess.run(["cargo", "build", "--release", "--locked", "-p", "strongbox"], cwd=ROOT, check=True)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "strongbox")


def with_database(url, db):
    scheme, rest = url.split("://", 1)
    host = rest.split("?", 1)[0].split("/", 1)[0]
    return f"{scheme}://{host}/{db}"


def mysql_args(url):
    rest = url.split("://", 1)[1]
    auth, hostpart = rest.rsplit("@", 1) if "@" in rest else ("root", rest)
    hostport = hostpart.split("/", 1)[0]
    user, _, password = auth.partition(":")
    host, _, port = hostport.partition(":")
    args = [f"-h{host}", f"-P{port or 3306}", f"-u{user}"]
    if password:
        args.append(f"-p{password}")
    return args


class Store:
    """A fresh store on one backend."""

    def __init__(self, backend, admin_url, workdir):
        self.backend, self.admin_url, self.db = backend, admin_url, None
        if backend == "sqlite":
            self.args = ["--data-dir", os.path.join(workdir, "data")]
        else:
            self.db = f"sbbench_{int(time.time())}_{os.getpid()}"
            if backend == "postgres":
                subprocess.run(["psql", admin_url, "-qc", f"CREATE DATABASE {self.db}"], check=True)
            else:
                subprocess.run(["mariadb", *mysql_args(admin_url), "-e", f"CREATE DATABASE {self.db}"], check=True)
            self.args = ["--database-url", with_database(admin_url, self.db)]

    def drop(self):
        if self.backend == "postgres":
            subprocess.run(["psql", self.admin_url, "-qc", f"DROP DATABASE IF EXISTS {self.db} WITH (FORCE)"], check=False)
        elif self.backend == "mysql":
            subprocess.run(["mariadb", *mysql_args(self.admin_url), "-e", f"DROP DATABASE IF EXISTS {self.db}"], check=False)


def proc_stat(pid):
    """(cpu seconds, rss MB, peak rss MB) of a process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    cpu = (int(fields[11]) + int(fields[12])) / CLK_TCK
    rss = hwm = 0.0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
            elif line.startswith("VmHWM:"):
                hwm = int(line.split()[1]) / 1024
    return cpu, rss, hwm


def reset_peak_rss(pid):
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def wrk(base, scenario, conns, duration, env):
    threads = min(conns, 2)
    cmd = ["wrk", f"-t{threads}", f"-c{conns}", f"-d{duration}s", "--timeout", "10s", "-s", WRK_SCRIPT, base]
    out = subprocess.run(cmd, env={**os.environ, **env, "BENCH_SCENARIO": scenario},
                         capture_output=True, text=True, check=True).stdout
    m = re.search(r"BENCH_RESULT (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return json.loads(m.group(1))


def self_signed(workdir):
    """A throwaway certificate for 127.0.0.1, and the serve arguments that use it."""
    cert, key = os.path.join(workdir, "tls.pem"), os.path.join(workdir, "tls.key")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                    "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    return ["--tls-cert", cert, "--tls-key", key]


def run_backend(binary, backend, admin_url, args):
    workdir = tempfile.mkdtemp(prefix=f"strongbox-bench-{backend}-")
    store = Store(backend, admin_url, workdir)
    key, token = secrets.token_hex(32), str(uuid.uuid4())
    env = {**os.environ, "STRONGBOX_ROOT_KEY": key, "STRONGBOX_ROOT_TOKEN": token, "STRONGBOX_LOG": args.log}
    server = None
    try:
        subprocess.run([binary, "init", *store.args], env=env, check=True, stdout=subprocess.DEVNULL)
        log(f"[{backend}] importing {args.users} users")
        users_file = os.path.join(workdir, "users.jsonl")
        with open(users_file, "w") as f:
            for i in range(args.users):
                f.write(json.dumps({"login": f"bench{i}", "email": f"bench{i}@bench.example",
                                    "name": f"Bench User {i}", "address": {"city": "York", "zip": "YO1 7HH"}}))
                f.write("\n")
        tokens_file = os.path.join(workdir, "tokens.txt")
        started = time.monotonic()
        with open(users_file) as fin, open(tokens_file, "w") as fout:
            subprocess.run([binary, "import", *store.args], env=env, stdin=fin, stdout=fout, check=True)
        import_secs = time.monotonic() - started
        log(f"[{backend}] imported in {import_secs:.1f} s ({args.users / import_secs:.0f} users/s)")

        server_log = open(os.path.join(workdir, "server.log"), "w")
        tls_args = self_signed(workdir) if args.tls else []
        server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--bench-endpoints", "true", *store.args, *tls_args, *args.serve_args],
                                  env=env, stdout=subprocess.PIPE, stderr=server_log, text=True)
        line = server.stdout.readline()
        m = re.match(r"Strongbox listening on (\S+)", line)
        if not m:
            raise RuntimeError(f"server did not start: {line!r}")
        base = m.group(1)
        time.sleep(1)
        _, idle_rss, _ = proc_stat(server.pid)
        wrk_env = {"BENCH_ROOT_TOKEN": token, "BENCH_TOKENS": tokens_file}
        tenant_env = tenant_users(base, token, workdir, args) if "t_get_token" in args.scenarios else {}
        fpt_env = card_tokens(base, token, workdir) if "v2_token_get" in args.scenarios else {}
        role_env = role_token(base, token) if "r_get_token" in args.scenarios else {}
        own_env = own_tokens(base, token, tokens_file, workdir) if "x_get_token" in args.scenarios else {}
        results = []
        for scenario in args.scenarios:
            for conns in args.connections:
                reset_peak_rss(server.pid)
                cpu0, _, _ = proc_stat(server.pid)
                t0 = time.monotonic()
                if scenario == "v2_search":
                    wrk_env = {**wrk_env, **search_unlock(base, token)}
                env_for = {**wrk_env, **(tenant_env if scenario.startswith("t_") else {}),
                           **(fpt_env if scenario == "v2_token_get" else {}), **role_env,
                           **(own_env if scenario == "x_get_token" else {})}
                r = wrk(base, scenario, conns, args.duration, {**env_for, "BENCH_RUN": f"{backend}{conns}{int(t0)}"})
                wall = time.monotonic() - t0
                cpu1, _, peak = proc_stat(server.pid)
                r.update(scenario=scenario, conns=conns, rps=r["requests"] / (r["duration_us"] / 1e6),
                         cpu=(cpu1 - cpu0) / wall * 100, peak_rss=peak)
                log(f"[{backend}] {LABELS[scenario]:<34} c={conns:<3} {r['rps']:>9.0f} req/s  "
                    f"p50 {r['p50_us'] / 1000:.2f} ms  p99 {r['p99_us'] / 1000:.2f} ms  "
                    f"non-2xx {r['non2xx'] + r['socket_errors']}  cpu {r['cpu']:.0f}%  peak {peak:.0f} MB")
                results.append(r)
        # The root key last: a server started with the old one refuses to add a KEK
        # or an index key until restarted with the new one.
        for kind, wanted in (("kek", args.rotate_kek), ("index", args.rotate_index),
                             ("root-key", args.rotate_root_key)):
            if wanted:
                rotate = (binary, store, env)
                results.append(rotate_under_load(base, token, wrk_env, backend, args, kind, rotate))
        return {"backend": backend, "users": args.users, "import_secs": import_secs,
                "idle_rss": idle_rss, "results": results}
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        store.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def v2_call(base, method, body, token, tenant=None):
    """One v2 call with curl: its JSON answer."""
    headers = ["-H", "Content-Type: application/json", "-H", f"X-Bunker-Token: {token}"]
    if tenant:
        headers += ["-H", f"X-Bunker-Tenant: {tenant}"]
    out = subprocess.run(["curl", "-sk", "-X", "POST", *headers, "--data-binary", "@-", f"{base}/v2/{method}"],
                         input=json.dumps(body), capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def card_tokens(base, root_token, workdir):
    """Tokenizes FPT_TOKENS card numbers (TokenCreateBulk): the wrk environment."""
    uuids = []
    for start in range(0, FPT_TOKENS, 1000):
        records = [{"tokentype": "creditcard", "record": f"4{i:015d}"} for i in range(start, start + 1000)]
        r = v2_call(base, "TokenCreateBulk", {"records": records}, root_token)
        uuids += [c["tokenuuid"] for c in r["created"]]
    path = os.path.join(workdir, "card-tokens.txt")
    with open(path, "w") as f:
        f.write("\n".join(uuids) + "\n")
    log(f"created {len(uuids)} card tokens")
    return {"BENCH_TOKENS": path}


def own_tokens(base, root_token, tokens_file, workdir):
    """Access tokens of the first OWN_TOKENS people (XTokenCreateForUser), each
    line `<record token> <access token>`: the wrk environment of `x_get_token`,
    the reference a role token's policy decisions are measured against (the same
    token lookup, no policy)."""
    with open(tokens_file) as f:
        people = [line.strip() for line in f][:OWN_TOKENS]
    lines = []
    for t in people:
        x = v2_call(base, "XTokenCreateForUser", {"mode": "token", "identity": t, "finaltime": "1d"}, root_token)
        lines.append(f"{t} {x['xtoken']}")
    path = os.path.join(workdir, "own-tokens.txt")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    log(f"issued {len(lines)} access tokens of people")
    return {"BENCH_TOKENS": path}


def search_unlock(base, root_token):
    """Waits until the search index is built (the vault serves with --search true),
    then a fresh unlock uuid (it lives 60 s) for `v2_search`."""
    deadline = time.monotonic() + 600
    while True:
        unlock = v2_call(base, "BulkListUnlock", {}, root_token)["unlockuuid"]
        r = v2_call(base, "UserSearch", {"identity": "bench0@bench.example", "unlockuuid": unlock}, root_token)
        if r.get("status") == "ok":
            return {"BENCH_UNLOCK": unlock}
        if time.monotonic() > deadline or "--search" in r.get("message", ""):
            raise RuntimeError(f"UserSearch does not answer: {r}")
        time.sleep(1)


def role_token(base, root_token):
    """A role whose policies allow UserGet of the name and the email (the rest is
    masked): its token, for `r_get_token`."""
    doc = [{"Effect": "Allow", "Action": "UserGet", "Resource": ["users.profile.name", "users.profile.email"]},
           {"Effect": "Deny", "Action": "*", "Resource": "users.profile.login"}]
    pid = v2_call(base, "PolicyCreate", {"policyname": "bench-read", "policy": doc}, root_token)["policyid"]
    v2_call(base, "RoleCreate", {"rolename": "bench"}, root_token)
    v2_call(base, "RoleLinkPolicy", {"rolename": "bench", "policyid": pid}, root_token)
    x = v2_call(base, "XTokenCreateForRole", {"rolename": "bench", "finaltime": "1d"}, root_token)
    return {"BENCH_ROLE_TOKEN": x["xtoken"]}


def tenant_users(base, root_token, workdir, args):
    """Creates the tenant `bench` and its users (UserCreateBulk): the wrk environment."""
    def call(method, body, token, tenant=None):
        return v2_call(base, method, body, token, tenant)
    created = call("TenantCreate", {"tenantname": "bench", "tenantorg": "Bench"}, root_token)
    admin = created["xtoken"]
    n = min(args.users, TENANT_USERS)
    tokens = []
    for start in range(0, n, 1000):
        records = [{"profile": {"login": f"tbench{i}", "email": f"tbench{i}@bench.example",
                                "name": f"Tenant User {i}"}} for i in range(start, min(n, start + 1000))]
        r = call("UserCreateBulk", {"records": records}, admin, "bench")
        tokens += [c["token"] for c in r["created"]]
    path = os.path.join(workdir, "tenant-tokens.txt")
    with open(path, "w") as f:
        f.write("\n".join(tokens) + "\n")
    log(f"created {len(tokens)} users in tenant bench")
    return {"BENCH_TENANT": "bench", "BENCH_TENANT_TOKEN": admin, "BENCH_TOKENS": path}


def http(method, url, token):
    import urllib.request
    req = urllib.request.Request(url, method=method, headers={"X-Bunker-Token": token},
                                 data=b"{}" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


def rotate_under_load(base, token, wrk_env, backend, args, kind, rotate):
    """The mixed load for `--duration` seconds with a rotation (`kind`: "root-key",
    "kek" or "index") started 2 s in; reports the load's figures, how long the
    rotation took to finish (the root key: `strongbox rotate root-key` on the store
    under the running server; every DEK re-wrapped; every index entry backfilled and
    the old index key retired), and then reads every bulk-loaded user back (by email
    after an index rotation, by token otherwise)."""
    import threading
    import urllib.error
    conns = max(args.connections)
    out = {}

    def load():
        out["r"] = wrk(base, "mixed", conns, args.duration, {**wrk_env, "BENCH_RUN": f"rot{kind}{backend}{int(time.time())}"})

    def finished(s, version):
        if kind == "kek":
            return s["current"] >= version and s["remaining"] == 0
        return s["versions"] == [version]

    t = threading.Thread(target=load)
    t.start()
    time.sleep(2)
    started = time.monotonic()
    url = f"{base}/v1/sys/rotate/{kind}"
    secs = None
    if kind == "root-key":
        binary, store, env = rotate
        p = subprocess.run([binary, "rotate", "root-key", *store.args], env=env, capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"rotate root-key failed: {p.stdout}{p.stderr}")
        secs = time.monotonic() - started
    else:
        version = http("POST", url, token)["version"]
    while secs is None:
        if finished(http("GET", url, token), version):
            secs = time.monotonic() - started
            break
        time.sleep(0.2)
    t.join()
    with open(wrk_env["BENCH_TOKENS"]) as f:
        tokens = [line.strip() for line in f if line.strip()]
    unreadable = 0
    for i, t_ in enumerate(tokens):
        path = f"/v1/user/email/bench{i}@bench.example" if kind == "index" else f"/v1/user/token/{t_}"
        try:
            http("GET", base + path, token)
        except urllib.error.HTTPError:
            unreadable += 1
    r = out["r"]
    r.update(scenario="mixed", conns=conns, rps=r["requests"] / (r["duration_us"] / 1e6), cpu=0, peak_rss=0,
             rotation=kind, rotation_secs=secs, unreadable=unreadable)
    what = {"root-key": "the key ring re-wrapped under a new root key",
            "kek": "every DEK re-wrapped",
            "index": "every index entry backfilled and the old key retired"}[kind]
    log(f"[{backend}] {kind} rotation under mixed load c={conns}: {r['rps']:.0f} req/s, "
        f"non-2xx {r['non2xx'] + r['socket_errors']}, {what} {secs:.2f} s after the rotation started; "
        f"{len(tokens) - unreadable} of {len(tokens)} users read back")
    return r


def machine():
    cpu = "unknown CPU"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_gb = int(f.readline().split()[1]) / 1024 / 1024
    return f"{os.cpu_count()} cores ({cpu}), {mem_gb:.0f} GiB RAM, Linux {platform.release()}"


def markdown(runs):
    out = []
    for run in runs:
        out += [f"### {run['backend']}: {run['users']:,} users "
                f"(bulk import {run['users'] / run['import_secs']:,.0f} users/s; idle RSS {run['idle_rss']:.0f} MB)", "",
                "| scenario | conns | req/s | of point-lookup ceiling | p50 ms | p99 ms | non-2xx | server CPU | peak RSS MB |",
                "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        ceiling = {r["conns"]: r["rps"] for r in run["results"] if r["scenario"] == "probe"}
        for r in run["results"]:
            frac = "—"
            if r["conns"] in ceiling and r["scenario"] not in ("probe", "status"):
                frac = f"{r['rps'] / ceiling[r['conns']] * 100:.0f} %"
            label = LABELS[r["scenario"]]
            if r.get("rotation") == "root-key":
                label += (f" during a root-key rotation (key ring re-wrapped in {r['rotation_secs']:.2f} s; "
                          f"{r['unreadable']} users unreadable after)")
            elif r.get("rotation") == "kek":
                label += (f" during a KEK rotation (every DEK re-wrapped in {r['rotation_secs']:.1f} s; "
                          f"{r['unreadable']} users unreadable after)")
            elif r.get("rotation") == "index":
                label += (f" during an index-key rotation (backfilled and cut over in {r['rotation_secs']:.1f} s; "
                          f"{r['unreadable']} users not found by email after)")
            out.append(f"| {label} | {r['conns']} | {r['rps']:,.0f} | {frac} | "
                       f"{r['p50_us'] / 1000:.2f} | {r['p99_us'] / 1000:.2f} | {r['non2xx'] + r['socket_errors']} | "
                       f"{r['cpu']:.0f} % | {r['peak_rss']:.0f} |")
        out.append("")
    return "\n".join(out)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=10_000)
    p.add_argument("--duration", type=int, default=20, help="seconds per run")
    p.add_argument("--connections", default="2,16,64")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--postgres-url", default=os.environ.get("STRONGBOX_BENCH_POSTGRES_URL"))
    p.add_argument("--mysql-url", default=os.environ.get("STRONGBOX_BENCH_MYSQL_URL"))
    p.add_argument("--log", default="info", help="server log filter (the log goes to a file)")
    p.add_argument("--output", default=os.path.join(ROOT, "docs", "benchmarks.md"))
    p.add_argument("--tls", action="store_true",
                   help="serve HTTPS with a throwaway certificate (wrk does not verify it)")
    p.add_argument("--serve-arg", dest="serve_args", action="append", default=[],
                   help="extra argument for `strongbox serve` (repeatable), e.g. --serve-arg=--sqlite-durability=normal")
    p.add_argument("--no-write", action="store_true", help="print the tables, do not touch docs/")
    p.add_argument("--binary", help="a built strongbox binary to measure (default: build the release one), "
                                    "e.g. one built from another commit's worktree")
    p.add_argument("--rotate-kek", action="store_true",
                   help="also run the mixed load while rotating the KEK (reports non-2xx and the re-wrap time)")
    p.add_argument("--rotate-root-key", action="store_true",
                   help="also run the mixed load while `strongbox rotate root-key` re-wraps the key ring under the running server")
    p.add_argument("--rotate-index", action="store_true",
                   help="also run the mixed load while rotating the blind-index key (reports non-2xx and the cut-over time)")
    args = p.parse_args()
    if args.tls and (args.rotate_kek or args.rotate_index or args.rotate_root_key):
        p.error("--tls does not combine with the rotation runs (they call the API without TLS)")
    args.connections = [int(c) for c in args.connections.split(",")]
    args.scenarios = args.scenarios.split(",")
    ensure_wrk()
    binary = args.binary or build()
    backends = [("sqlite", None)]
    if args.postgres_url:
        backends.append(("postgres", args.postgres_url))
    if args.mysql_url:
        backends.append(("mysql", args.mysql_url))
    runs = [run_backend(binary, b, url, args) for b, url in backends]
    table = markdown(runs)
    header = (f"Measured {time.strftime('%Y-%m-%d')} on {machine()}; load generator wrk on the same machine, "
              f"{args.duration} s per run, server log at `{args.log}` to a file, default durability "
              f"(SQLite `synchronous=FULL`).\n\nCommand: `python3 bench/run.py {' '.join(sys.argv[1:])}`\n")
    print(header)
    print(table)
    if not args.no_write:
        write_results(args.output, header + "\n" + table)


def write_results(path, section):
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    text = open(path).read() if os.path.exists(path) else f"# Benchmarks\n\n{begin}\n{end}\n"
    if begin not in text:
        text += f"\n{begin}\n{end}\n"
    pre, rest = text.split(begin, 1)
    post = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(f"{pre}{begin}\n{section}\n{end}{post}")
    log(f"wrote {path}")


if __name__ == "__main__":
    main()
