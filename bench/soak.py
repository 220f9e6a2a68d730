#!/usr/bin/env python3
"""Strongbox soak test: a steady mixed load for a long time, watching for drift.

For each backend (SQLite always; PostgreSQL when its URL is given) it builds the
release binary, initializes a fresh store, imports N users, serves it, and drives a
paced mix with wrk (bench/soak.lua: reads by token and email, updates, creates,
erasures of users it created, pages of the admin audit log) for `--minutes`, in
one-minute rounds. After each round it samples the server's resident memory, open
file descriptors, the round's p99 latency and throughput, and the size of the
write-ahead log (SQLite's -wal file; PostgreSQL's pg_wal through pg_ls_waldir).
The backends run side by side. It writes a chart (docs/soak.svg) and a section of
docs/benchmarks.md.

    python3 bench/soak.py --postgres-url postgres://postgres@127.0.0.1:5432/test
    python3 bench/soak.py --minutes 5 --no-write      # a quick look
"""

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import threading
import time
import uuid

import run as bench

SOAK_SCRIPT = os.path.join(bench.ROOT, "bench", "soak.lua")
SERIES = [
    ("rss_mb", "resident memory (MB)"),
    ("fds", "open file descriptors"),
    ("p99_ms", "p99 latency (ms)"),
    ("wal_mb", "write-ahead log (MB)"),
]
# Backends whose server had autovacuum off, so the script vacuumed for it.
VACUUMED = set()
COLORS = {"sqlite": "#1f77b4", "postgres": "#d62728", "mysql": "#2ca02c"}


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def wal_mb(store, workdir):
    if store.backend == "sqlite":
        wal = os.path.join(workdir, "data", "strongbox.sqlite3-wal")
        return os.path.getsize(wal) / 1e6 if os.path.exists(wal) else 0.0
    if store.backend == "postgres":
        out = subprocess.run(["psql", store.admin_url, "-qAtc", "SELECT COALESCE(SUM(size), 0) FROM pg_ls_waldir()"],
                             capture_output=True, text=True, check=True).stdout
        return int(out.strip() or 0) / 1e6
    return 0.0


def autovacuum_is_off(store):
    out = subprocess.run(["psql", store.admin_url, "-qAtc", "SHOW autovacuum"],
                         capture_output=True, text=True, check=True).stdout
    return out.strip() == "off"


def vacuum(store):
    """What autovacuum does for a production PostgreSQL: reclaim dead rows, refresh the
    planner's statistics. Some test machines run PostgreSQL with autovacuum off."""
    url = bench.with_database(store.admin_url, store.db)
    subprocess.run(["psql", url, "-qc", "VACUUM (ANALYZE)"], check=True, stdout=subprocess.DEVNULL)


def round_of_load(base, env, conns, seconds):
    cmd = ["wrk", f"-t{conns}", f"-c{conns}", f"-d{seconds}s", "--timeout", "10s", "-s", SOAK_SCRIPT, base]
    out = subprocess.run(cmd, env={**os.environ, **env}, capture_output=True, text=True, check=True).stdout
    m = re.search(r"BENCH_RESULT (\{.*\})", out)
    if not m:
        raise RuntimeError(f"wrk printed no result:\n{out}")
    return json.loads(m.group(1))


def soak(binary, backend, admin_url, args, samples):
    workdir = tempfile.mkdtemp(prefix=f"strongbox-soak-{backend}-")
    store = bench.Store(backend, admin_url, workdir)
    key, token = secrets.token_hex(32), str(uuid.uuid4())
    env = {**os.environ, "STRONGBOX_ROOT_KEY": key, "STRONGBOX_ROOT_TOKEN": token, "STRONGBOX_LOG": "warn"}
    server = None
    try:
        subprocess.run([binary, "init", *store.args], env=env, check=True, stdout=subprocess.DEVNULL)
        users_file = os.path.join(workdir, "users.jsonl")
        with open(users_file, "w") as f:
            for i in range(args.users):
                f.write(json.dumps({"login": f"bench{i}", "email": f"bench{i}@bench.example",
                                    "name": f"Bench User {i}"}) + "\n")
        tokens_file = os.path.join(workdir, "tokens.txt")
        with open(users_file) as fin, open(tokens_file, "w") as fout:
            subprocess.run([binary, "import", *store.args], env=env, stdin=fin, stdout=fout, check=True)
        server_log = open(os.path.join(workdir, "server.log"), "w")
        server = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0", "--list-users", "true", *store.args],
                                  env=env, stdout=subprocess.PIPE, stderr=server_log, text=True)
        m = re.match(r"Strongbox listening on (\S+)", server.stdout.readline())
        if not m:
            raise RuntimeError(f"{backend}: the server did not start")
        base = m.group(1)
        stand_in = store.backend == "postgres" and autovacuum_is_off(store)
        if stand_in:
            VACUUMED.add(backend)
            bench.log(f"[{backend}] autovacuum is off on this server: VACUUM (ANALYZE) after every minute instead")
        load_env = {"BENCH_ROOT_TOKEN": token, "BENCH_TOKENS": tokens_file, "SOAK_DELAY_MS": str(args.delay_ms)}
        for minute in range(1, args.minutes + 1):
            r = round_of_load(base, {**load_env, "BENCH_RUN": f"{backend}{minute}{int(time.time())}"},
                              args.connections, 60)
            _, rss, _ = bench.proc_stat(server.pid)
            sample = {"minute": minute, "rss_mb": rss, "fds": open_fds(server.pid),
                      "p99_ms": r["p99_us"] / 1000, "p50_ms": r["p50_us"] / 1000,
                      "rps": r["requests"] / (r["duration_us"] / 1e6),
                      "errors": r["non2xx"] + r["socket_errors"], "wal_mb": wal_mb(store, workdir)}
            samples.append(sample)
            bench.log(f"[{backend}] minute {minute:>2}: {sample['rps']:.0f} req/s  p50 {sample['p50_ms']:.2f} ms  "
                      f"p99 {sample['p99_ms']:.2f} ms  rss {rss:.1f} MB  fds {sample['fds']}  "
                      f"wal {sample['wal_mb']:.1f} MB  errors {sample['errors']}")
            if server.poll() is not None:
                raise RuntimeError(f"{backend}: the server exited")
            if stand_in:
                vacuum(store)
    finally:
        if server:
            server.terminate()
            server.wait(timeout=30)
        store.drop()
        shutil.rmtree(workdir, ignore_errors=True)


def svg(runs, minutes):
    """Four small line charts, one per sampled quantity, a line per backend."""
    w, h, pad, gap = 340, 190, 44, 24
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{2 * w + gap}" height="{2 * h + gap + 30}" '
           'font-family="sans-serif" font-size="11">',
           f'<rect width="100%" height="100%" fill="white"/>']
    for i, (key, title) in enumerate(SERIES):
        x0, y0 = (i % 2) * (w + gap), (i // 2) * (h + gap)
        values = [s[key] for samples in runs.values() for s in samples]
        top = max(values + [1e-9]) * 1.15
        px = lambda m: x0 + pad + (m - 1) / max(minutes - 1, 1) * (w - pad - 10)
        py = lambda v: y0 + h - 24 - v / top * (h - 50)
        out.append(f'<text x="{x0 + w / 2}" y="{y0 + 14}" text-anchor="middle" font-weight="bold">{title}</text>')
        out.append(f'<line x1="{x0 + pad}" y1="{py(0)}" x2="{x0 + w - 10}" y2="{py(0)}" stroke="#888"/>')
        out.append(f'<line x1="{x0 + pad}" y1="{py(0)}" x2="{x0 + pad}" y2="{py(top)}" stroke="#888"/>')
        for frac in (0.5, 1.0):
            v = top / 1.15 * frac
            out.append(f'<text x="{x0 + pad - 4}" y="{py(v) + 4}" text-anchor="end">{v:.3g}</text>')
            out.append(f'<line x1="{x0 + pad}" y1="{py(v)}" x2="{x0 + w - 10}" y2="{py(v)}" stroke="#eee"/>')
        for m in (1, minutes // 2, minutes):
            out.append(f'<text x="{px(m)}" y="{y0 + h - 8}" text-anchor="middle">{m} min</text>')
        for backend, samples in runs.items():
            points = " ".join(f"{px(s['minute']):.1f},{py(s[key]):.1f}" for s in samples)
            out.append(f'<polyline fill="none" stroke="{COLORS.get(backend, "#000")}" stroke-width="2" '
                       f'points="{points}"/>')
    lx = 10
    for backend in runs:
        out.append(f'<rect x="{lx}" y="{2 * h + gap + 12}" width="14" height="4" fill="{COLORS.get(backend, "#000")}"/>')
        out.append(f'<text x="{lx + 18}" y="{2 * h + gap + 18}">{backend}</text>')
        lx += 90
    out.append("</svg>")
    return "\n".join(out) + "\n"


def markdown(runs, args):
    lines = [f"Measured {time.strftime('%Y-%m-%d')} on {bench.machine()}, "
             f"`python3 bench/soak.py --minutes {args.minutes}"
             + (" --postgres-url …" if "postgres" in runs else "") + "`: "
             f"{args.users:,} users imported, {args.connections} connections per backend each pausing "
             f"{args.delay_ms} ms between requests, the backends side by side. Out of every 10 requests: "
             "4 reads (token, email), 2 updates, 2 creates, 1 erasure, 1 page of `/v1/audit/admin`."
             + ("" if not VACUUMED else
                " This machine's PostgreSQL runs with autovacuum off, so the script ran `VACUUM (ANALYZE)` "
                "on the soak's database after every minute, as autovacuum would."),
             "", "![soak](soak.svg)", "",
             "| backend | minute | req/s | p50 ms | p99 ms | RSS MB | fds | WAL MB | errors |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for backend, samples in runs.items():
        shown = [s for s in samples if s["minute"] in (1, 2, 5) or s["minute"] % 5 == 0]
        for s in shown:
            lines.append(f"| {backend} | {s['minute']} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
                         f"{s['rss_mb']:.1f} | {s['fds']} | {s['wal_mb']:.1f} | {s['errors']} |")
    return "\n".join(lines) + "\n"


def write_section(path, section):
    """Replaces the soak section of docs/benchmarks.md (between its markers)."""
    begin, end = "<!-- soak:begin -->", "<!-- soak:end -->"
    text = open(path).read()
    if begin not in text:
        text += f"\n## Soak\n\n{begin}\n{end}\n"
    pre, rest = text.split(begin, 1)
    post = rest.split(end, 1)[1]
    with open(path, "w") as f:
        f.write(f"{pre}{begin}\n{section}{end}{post}")
    bench.log(f"wrote {path}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--minutes", type=int, default=30)
    p.add_argument("--users", type=int, default=10000)
    p.add_argument("--connections", type=int, default=4)
    p.add_argument("--delay-ms", type=int, default=10, help="pause of each connection between two requests")
    p.add_argument("--postgres-url", default=os.environ.get("STRONGBOX_TEST_POSTGRES_URL"))
    p.add_argument("--binary", help="a built strongbox binary (default: build the release one)")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/ as it is")
    args = p.parse_args()
    bench.ensure_wrk()
    binary = args.binary or bench.build()
    backends = [("sqlite", None)] + ([("postgres", args.postgres_url)] if args.postgres_url else [])
    runs = {b: [] for b, _ in backends}
    errors = []

    def one(backend, url):
        try:
            soak(binary, backend, url, args, runs[backend])
        except Exception as e:  # reported after the others finish
            errors.append(f"{backend}: {e}")

    threads = [threading.Thread(target=one, args=b) for b in backends]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise SystemExit("\n".join(errors))
    section = markdown(runs, args)
    print(section)
    if not args.no_write:
        with open(os.path.join(bench.ROOT, "docs", "soak.svg"), "w") as f:
            f.write(svg(runs, args.minutes))
        write_section(os.path.join(bench.ROOT, "docs", "benchmarks.md"), section)
        with open(os.path.join(bench.ROOT, "docs", "soak.json"), "w") as f:
            json.dump(runs, f, indent=1)


if __name__ == "__main__":
    main()
