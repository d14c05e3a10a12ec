#!/usr/bin/env python3
"""Issue 12's benchmark: vpcep on PostgreSQL beside pgbench on the same throwaway cluster. Per round,
each phase on a fresh schema: pgbench with a one-row insert transaction shaped like vpcep's VPC create
(the comparison of the target), pgbench with the statements vpcep's create runs (a diagnostic: what
PostgreSQL itself gets from them, with one client as one server's write queue allows and with 64),
vpcep durable creates with 64 callers through one server and through three, then cached
GetEndpointService reads with 64 callers through one server on PostgreSQL and one on SQLite.
PostgreSQL's side of each phase (CPU of all its processes, commits, rollbacks, WAL fsyncs) is read
from /proc and its statistics views. Prints one JSON line per phase and the Markdown table of
BENCHMARKS.md, "PostgreSQL beside pgbench (issue 12)". Called by postgres.sh."""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time
from urllib.parse import urlsplit

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--bench", required=True)
p.add_argument("--certs", required=True)
p.add_argument("--pg-url", required=True, help="postgres://user@host:port/database of the throwaway cluster")
p.add_argument("--pg-bin", required=True, help="the cluster's bin folder (psql, pgbench)")
p.add_argument("--pg-data", required=True, help="the cluster's data folder (for postmaster.pid)")
p.add_argument("--out", required=True, help="where the JSON lines of every phase go")
p.add_argument("--rounds", type=int, default=int(os.environ.get("PG_ROUNDS", 3)))
p.add_argument("--warmup", type=float, default=float(os.environ.get("PG_WARMUP", 2)))
p.add_argument("--duration", type=float, default=float(os.environ.get("PG_DURATION", 8)))
p.add_argument("--callers", type=int, default=int(os.environ.get("PG_CALLERS", 64)))
p.add_argument("--only", action="append", default=[], help="run only the phases whose name contains this (repeatable)")
args = p.parse_args()

CA, CRT, KEY = (os.path.join(args.certs, n) for n in ("ca.crt", "alice.crt", "alice.key"))
SCRT, SKEY = os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key")
TLS = ["--tls-ca", CA, "--tls-cert", CRT, "--tls-key", KEY]
PORTS = [17643, 17644, 17645]
URL = urlsplit(args.pg_url)
PG = ["-h", URL.hostname, "-p", str(URL.port), "-U", URL.username, "-d", URL.path.lstrip("/")]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_port(port, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def psql(sql):
    out = subprocess.run([os.path.join(args.pg_bin, "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", *PG, "-c", sql],
                         check=True, capture_output=True, text=True)
    return out.stdout.strip()


def cpu_seconds(pid, children=False):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    ticks = int(f[11]) + int(f[12]) + (int(f[13]) + int(f[14]) if children else 0)
    return ticks / os.sysconf("SC_CLK_TCK")


def pg_sample():
    """PostgreSQL's side: CPU of the postmaster and every backend, those that exited included (the
    postmaster's reaped children), commits and rollbacks of the database, and WAL syncs."""
    postmaster = int(open(os.path.join(args.pg_data, "postmaster.pid")).readline())
    cpu = cpu_seconds(postmaster, children=True)
    for child in subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split():
        try:
            cpu += cpu_seconds(int(child))
        except (OSError, IndexError):
            pass  # exited in between: counted in the postmaster's children once reaped
    commits, rollbacks = psql("SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()").split("|")
    syncs = psql("SELECT wal_sync FROM pg_stat_wal")
    return {"cpu": cpu, "commits": int(commits), "rollbacks": int(rollbacks), "wal_syncs": int(syncs)}


def pg_delta(before, after, per):
    """PostgreSQL's cost over a phase, per transaction (`per` = its commits)."""
    commits = after["commits"] - before["commits"]
    return {"pg_commits": commits, "pg_rollbacks": after["rollbacks"] - before["rollbacks"],
            "pg_cpu_us_per_tx": (after["cpu"] - before["cpu"]) / max(per(commits), 1) * 1e6,
            "wal_syncs_per_commit": (after["wal_syncs"] - before["wal_syncs"]) / max(commits, 1)}


# Where PostgreSQL's client backends are, sampled every 10 ms from pg_stat_activity within one statement
# (so the sampler is one backend, not one process per sample): running, waiting on something (WALSync:
# the commit's fsync; Lock: another transaction's row), or idle in a transaction, waiting for its client.
PROFILE = """CREATE TEMP TABLE samples (what TEXT);
DO $$ DECLARE stop TIMESTAMPTZ; BEGIN
  PERFORM pg_sleep({delay});
  stop := clock_timestamp() + interval '{seconds} seconds';
  WHILE clock_timestamp() < stop LOOP
    PERFORM pg_stat_clear_snapshot();
    INSERT INTO samples SELECT CASE
        WHEN state = 'active' AND wait_event IS NULL THEN 'running'
        WHEN state = 'active' THEN wait_event_type || ':' || wait_event
        ELSE state END
      FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database();
    INSERT INTO samples VALUES ('#sample');
    PERFORM pg_sleep(0.01);
  END LOOP;
END $$;
SELECT what || '|' || count(*) FROM samples GROUP BY what;"""


class WaitProfile:
    """Samples PostgreSQL's client backends in the background: starts `delay` s from now, for `seconds`."""

    def __init__(self, delay, seconds):
        self.proc = subprocess.Popen([os.path.join(args.pg_bin, "psql"), "-X", "-q", "-A", "-t", *PG,
                                      "-c", PROFILE.format(delay=delay, seconds=seconds)],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)

    def result(self):
        """Mean backends per state over the samples, idle ones left out."""
        out, _ = self.proc.communicate(timeout=120)
        counts = dict((line.rsplit("|", 1)[0], int(line.rsplit("|", 1)[1])) for line in out.splitlines() if "|" in line)
        samples = max(counts.pop("#sample", 0), 1)
        counts.pop("idle", None)
        return {k: round(v / samples, 3) for k, v in sorted(counts.items(), key=lambda kv: -kv[1])}


def settle():
    # Backends publish their statistics when a transaction ends, at most once a second (PostgreSQL 15).
    time.sleep(1.2)


# The table of vpcep's VPCs (Sources/VPCEPStorePostgres, migration 1), and its change log.
VPCS = """CREATE TABLE vpcs (id TEXT PRIMARY KEY, region TEXT NOT NULL, owner_id TEXT NOT NULL, name TEXT NOT NULL,
  cidr TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);
CREATE INDEX vpcs_by_owner ON vpcs (region, owner_id);"""
LOG = """CREATE TABLE log_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq BIGINT NOT NULL);
INSERT INTO log_head (id, seq) VALUES (1, 0);
CREATE TABLE change_events (seq BIGINT PRIMARY KEY, region TEXT NOT NULL, kind TEXT NOT NULL, resource_id TEXT NOT NULL,
  type TEXT NOT NULL, state TEXT NOT NULL, previous TEXT, revision_before BIGINT, revision_after BIGINT, actor TEXT NOT NULL,
  request_id TEXT NOT NULL, idempotency_key TEXT NOT NULL, committed_at BIGINT NOT NULL, owner_id TEXT NOT NULL,
  provider_id TEXT, service_id TEXT, provider_sees BIGINT NOT NULL);
CREATE INDEX change_events_by_resource ON change_events (resource_id, seq);
CREATE INDEX change_events_by_owner ON change_events (region, owner_id, seq);
CREATE INDEX change_events_by_provider ON change_events (region, provider_id, seq) WHERE provider_sees = 1;
CREATE INDEX change_events_by_service ON change_events (service_id, seq);
CREATE INDEX change_events_by_time ON change_events (region, committed_at);"""
# Values of a VPC create's size: a UUID id (as vpcep's), the tenant, "bench-<n>", "10.<n>.0.0/16", two times.
VARS = r"""\set n random(1, 1000000000)
\set octet :n % 250
\set ms random(1764547200000, 1764633600000)
"""
INSERT = """INSERT INTO vpcs (id, region, owner_id, name, cidr, created_at, updated_at)
  VALUES (gen_random_uuid()::text, 'eu-west-1', 'alice', 'bench-' || :n, '10.' || :octet || '.0.0/16', :ms, :ms)"""
# The comparison of the target: BEGIN, one INSERT, COMMIT, PostgreSQL's default isolation.
ONE_ROW = VARS + "BEGIN;\n" + INSERT + ";\nEND;\n"
# What vpcep's create runs (docs/DOMAIN.md, "PostgreSQL store"): serializable, the row, the log's head
# and one event whose state is the VPC as JSON (~220 bytes, as ResourceState encodes it).
AS_VPCEP = VARS + "BEGIN ISOLATION LEVEL SERIALIZABLE;\n" + INSERT + r""" RETURNING id \gset
UPDATE log_head SET seq = seq + 1 WHERE id = 1 RETURNING seq \gset
INSERT INTO change_events (seq, region, kind, resource_id, type, state, previous, revision_before, revision_after, actor,
  request_id, idempotency_key, committed_at, owner_id, provider_id, service_id, provider_sees)
  VALUES (:seq, 'eu-west-1', 'vpc', :id, 'created',
  '{"vpc":{"cidr":"10.' || :octet || '.0.0/16","createdAt":' || :ms || ',"id":"' || :id || '","name":"bench-' || :n ||
  '","ownerID":"alice","region":"eu-west-1","updatedAt":' || :ms || '}}',
  NULL, NULL, NULL, 'tenant/alice', '', '', :ms, 'alice', NULL, NULL, 0);
COMMIT;
"""


def pgbench(name, schema, tables, script, clients):
    """pgbench on a fresh schema: a warm-up run (discarded), then a measured one of `duration` s with
    every transaction's latency logged (-l), retrying serialization failures up to 8 times as vpcep does."""
    psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}; SET search_path = {schema}; {tables}")
    with tempfile.TemporaryDirectory(prefix="pgbench-") as work:
        path = os.path.join(work, "script.sql")
        with open(path, "w") as f:
            f.write(script)
        env = {**os.environ, "PGOPTIONS": f"-c search_path={schema}"}
        base = [os.path.join(args.pg_bin, "pgbench"), "-n", "-M", "extended", "-f", path, "-c", str(clients),
                "-j", str(min(clients, 2)), "--max-tries", "8", *PG]
        subprocess.run([*base, "-T", str(max(int(args.warmup), 1))], check=True, capture_output=True, text=True, env=env, cwd=work)
        settle()
        before = pg_sample()
        load = os.getloadavg()[0]
        profile = WaitProfile(0.5, max(args.duration - 1, 1))
        out = subprocess.run([*base, "-T", str(int(args.duration)), "-l", "--log-prefix", os.path.join(work, "tx")],
                             check=True, capture_output=True, text=True, env=env, cwd=work).stdout
        settle()
        after = pg_sample()
        latencies = []
        for name_ in os.listdir(work):
            if name_.startswith("tx"):
                for line in open(os.path.join(work, name_)):
                    field = line.split()[2]
                    if field.isdigit():
                        latencies.append(int(field))
    r = {"phase": name, "system": "pgbench", "clients": clients, "load_avg_1m": load}
    for line in out.splitlines():
        line = line.strip()
        if line.startswith("tps ="):
            r["rps"] = float(line.split()[2])
        elif line.startswith("number of transactions actually processed"):
            r["calls"] = int(line.split(":")[1].split("/")[0])
        elif line.startswith("number of failed transactions"):
            r["errors"] = int(line.split(":")[1].split()[0])
        elif line.startswith("number of transactions retried"):
            r["retried"] = int(line.split(":")[1].split()[0])
        elif line.startswith("total number of retries"):
            r["retries"] = int(line.split(":")[1].split()[0])
    latencies.sort()
    for key, q in (("p50_us", 0.5), ("p99_us", 0.99)):
        r[key] = latencies[min(len(latencies) - 1, int(len(latencies) * q))] if latencies else 0
    r.update(pg_delta(before, after, lambda commits: commits))
    r["pg_backends"] = profile.result()
    return r


def start_vpcep(port, data, store):
    cmd = [args.server, "--listen", f"127.0.0.1:{port}", "--admin-listen", "off", "--data-dir", data,
           "--tls-ca", CA, "--tls-cert", SCRT, "--tls-key", SKEY, "--region", "eu-west-1", "--log-level", "warning"]
    if store:
        cmd += ["--store", store]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL)


def bench(*a):
    out = subprocess.run([args.bench, *a], check=True, capture_output=True, text=True, timeout=600)
    return json.loads(out.stdout.strip().splitlines()[-1])


def vpcep_phase(name, schema, servers, work, run):
    """`servers` vpcep-servers on a fresh PostgreSQL schema (or on SQLite when `schema` is None), each
    with its own data folder; `run(ports, pids)` drives them. PostgreSQL is sampled from before the
    servers start to after they stopped, so that every backend's statistics and CPU are in."""
    store = None
    if schema:
        psql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        store = f"{args.pg_url}?sslmode=disable&schema={schema}"
    settle()
    before = pg_sample()
    procs = [start_vpcep(PORTS[i], tempfile.mkdtemp(prefix="data-", dir=work), store) for i in range(servers)]
    try:
        for i in range(servers):
            wait_port(PORTS[i])
        load = os.getloadavg()[0]
        # vpcep-bench's measured window starts after its connections and the warm-up (reads: after seeding).
        profile = WaitProfile(args.warmup + 1, max(args.duration - 1, 1)) if schema else None
        r = run(PORTS[:servers], [proc.pid for proc in procs])
    finally:
        for proc in procs:
            stop(proc)
    settle()
    after = pg_sample()
    r.pop("scenario", None)
    r.update({"phase": name, "system": "vpcep", "servers": servers, "store": "postgres" if schema else "sqlite",
              "load_avg_1m": load})
    if schema:
        # Per call in the measured window would need PostgreSQL's counters at its edges; per commit over the
        # whole phase (warm-up and seeding included) is the same ratio for creates, and for reads the calls'
        # share of the commits is what vpcep-bench counted against all the read-only commits.
        r.update(pg_delta(before, after, lambda commits: commits))
        r["pg_backends"] = profile.result()
    return r


def creates(ports, pids):
    return bench("creates", "--port", str(ports[0]), "--ports", ",".join(map(str, ports)), "--callers", str(args.callers),
                 "--warmup", str(args.warmup), "--duration", str(args.duration), "--server-pids", ",".join(map(str, pids)), *TLS)


def reads(ports, pids):
    service = bench("seed", "--port", str(ports[0]), *TLS)["serviceId"]
    return bench("read", "--target", "vpcep", "--port", str(ports[0]), "--conns", str(args.callers), "--inflight", "1",
                 "--warmup", str(args.warmup), "--duration", str(args.duration), "--service", service,
                 "--server-pids", ",".join(map(str, pids)), *TLS)


PHASES = [
    ("pgbench one-row insert", lambda rnd, work: pgbench("pgbench one-row insert", f"bench_pgbench_{rnd}", VPCS, ONE_ROW, args.callers)),
    ("pgbench vpcep's statements, 1 client",
     lambda rnd, work: pgbench("pgbench vpcep's statements, 1 client", f"bench_pgbench1_{rnd}", VPCS + LOG, AS_VPCEP, 1)),
    (f"pgbench vpcep's statements, {args.callers} clients",
     lambda rnd, work: pgbench(f"pgbench vpcep's statements, {args.callers} clients", f"bench_pgbenchn_{rnd}", VPCS + LOG, AS_VPCEP, args.callers)),
    ("creates, 1 server", lambda rnd, work: vpcep_phase("creates, 1 server", f"bench_one_{rnd}", 1, work, creates)),
    ("creates, 3 servers", lambda rnd, work: vpcep_phase("creates, 3 servers", f"bench_three_{rnd}", 3, work, creates)),
    ("reads, PostgreSQL", lambda rnd, work: vpcep_phase("reads, PostgreSQL", f"bench_reads_{rnd}", 1, work, reads)),
    ("reads, SQLite", lambda rnd, work: vpcep_phase("reads, SQLite", None, 1, work, reads)),
]


def table(results):
    def vals(phase, key):
        return [r[key] for r in results if r["phase"] == phase and key in r]

    def cell(phase, key, fmt="{:.0f}"):
        v = vals(phase, key)
        if not v:
            return "–"
        if len(v) == 1:
            return fmt.format(v[0])
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"

    def med(phase, key):
        v = vals(phase, key)
        return statistics.median(v) if v else float("nan")

    def errors(phase):
        counts = {}
        for r in results:
            if r["phase"] == phase:
                for status, n in r.get("errors_by_status", {}).items():
                    counts[status] = counts.get(status, 0) + n
                if r["system"] == "pgbench":
                    counts["failed"] = counts.get("failed", 0) + r.get("errors", 0)
                    counts["retried"] = counts.get("retried", 0) + r.get("retried", 0)
        return ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "0"

    n = len({r.get("round") for r in results})
    print(f"\n{n} round(s), medians (min–max); each phase a fresh schema, warm-up {args.warmup:g} s, measured {args.duration:g} s, "
          f"{args.callers} callers or clients. Errors: summed over the rounds, by status.\n")
    print("| phase | tx or calls/s | p50 µs | p99 µs | vpcep CPU µs/call | PostgreSQL CPU µs/commit | WAL fsyncs/commit | "
          "errors in the window | load avg (1 min) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for phase, _ in PHASES:
        if not vals(phase, "rps"):
            continue
        print(f"| {phase} | {cell(phase, 'rps')} | {cell(phase, 'p50_us')} | {cell(phase, 'p99_us')} | "
              f"{cell(phase, 'server_cpu_us_per_call', '{:.0f}')} | {cell(phase, 'pg_cpu_us_per_tx')} | "
              f"{cell(phase, 'wal_syncs_per_commit', '{:.2f}')} | {errors(phase)} | {cell(phase, 'load_avg_1m', '{:.1f}')} |")
    print("\nPostgreSQL's client backends, mean number in each state over the measured window (idle ones left out; "
          "first round; `ClientRead` while active and `idle in transaction`: waiting for the client):\n")
    for phase, _ in PHASES:
        first = next((r for r in results if r["phase"] == phase and r.get("pg_backends")), None)
        if first:
            print(f"- {phase}: " + ", ".join(f"{k} {v:g}" for k, v in first["pg_backends"].items()))
    pgb = med("pgbench one-row insert", "rps")
    print()
    for phase in ("creates, 1 server", "creates, 3 servers"):
        if vals(phase, "rps") and vals("pgbench one-row insert", "rps"):
            ratio = med(phase, "rps") / pgb
            print(f"- {phase}: {med(phase, 'rps'):.0f}/s = {ratio:.1%} of pgbench's {pgb:.0f} tx/s "
                  f"(target ≥ 50%): {'met' if ratio >= 0.5 else 'missed'}")
    if vals("reads, PostgreSQL", "rps") and vals("reads, SQLite", "rps"):
        ratio = med("reads, PostgreSQL", "rps") / med("reads, SQLite", "rps")
        print(f"- cached reads through a replica on PostgreSQL: {med('reads, PostgreSQL', 'rps'):.0f}/s = {ratio:.1%} of "
              f"SQLite's {med('reads, SQLite', 'rps'):.0f}/s (target ≥ 90%): {'met' if ratio >= 0.9 else 'missed'}")


def main():
    results = []
    with open(args.out, "w") as out, tempfile.TemporaryDirectory(prefix="vpcep-pgbench-") as work:
        for rnd in range(1, args.rounds + 1):
            for name, run in PHASES:
                if args.only and not any(part in name for part in args.only):
                    continue
                log(f"round {rnd}/{args.rounds}: {name}")
                r = run(rnd, work)
                r["round"] = rnd
                log("  " + json.dumps(r, sort_keys=True))
                out.write(json.dumps(r, sort_keys=True) + "\n")
                out.flush()
                results.append(r)
    table(results)


main()
