#!/usr/bin/env python3
"""Issue 14's scale scenarios: for each registry size, seeds a SQLite data directory through the
registry (`vpcep-scale seed`, one store transaction per tenant, timed apart), then per round:
- scale: starts vpcep-server on it and measures start-up (process start to listening), RSS, store size,
  GetEndpointService over many distinct services with 64 callers, and first and deep pages of filtered
  lists (`vpcep-scale measure`);
- cold: starts the server again and reads each of --cold-services services once, 64 callers
  (`vpcep-scale cold`): the first read of each service after a restart;
- mixed: on that same server, 64 callers reading only, then the same callers and read mix with 10% of
  the tenants' writes (`vpcep-scale mixed`).
Prints a Markdown table; raw data: one JSON object per size and round in --out. Called by scale.sh."""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--scale", required=True, help="the vpcep-scale executable")
p.add_argument("--work", required=True)
p.add_argument("--certs", required=True, help="a PKI with the operator ops")
p.add_argument("--sizes", default=os.environ.get("SCALE_SIZES", "1000,100000,1000000"))
p.add_argument("--rounds", type=int, default=int(os.environ.get("SCALE_ROUNDS", 1)))
p.add_argument("--seed", type=int, default=int(os.environ.get("SCALE_SEED", 14)))
p.add_argument("--tenants", type=int, default=1000)
p.add_argument("--warmup", type=float, default=float(os.environ.get("WARMUP", 3)))
p.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", 6)))
p.add_argument("--list-calls", type=int, default=int(os.environ.get("SCALE_LIST_CALLS", 200)))
p.add_argument("--scenarios", default=os.environ.get("SCALE_SCENARIOS", "scale,cold,mixed"),
               help="any of scale, cold, mixed, comma-separated; seed only: none")
p.add_argument("--cold-services", type=int, default=int(os.environ.get("SCALE_COLD_SERVICES", 100000)),
               help="services read once each by the cold scenario (at most the size's services)")
p.add_argument("--mixed-tenants", type=int, default=64, help="tenants whose writes the mixed scenario makes (certificates t00000...)")
p.add_argument("--per-record", action="store_true", help="seed with one store transaction per registry call (the old, slow way)")
p.add_argument("--reseed", action="store_true", help="seed again even when a data directory of the same plan exists")
p.add_argument("--out", required=True, help="JSON lines, one per size and round")
args = p.parse_args()

CA = os.path.join(args.certs, "ca.crt")
OPS = ["--tls-ca", CA, "--tls-cert", os.path.join(args.certs, "ops.crt"), "--tls-key", os.path.join(args.certs, "ops.key")]
SCRT, SKEY = os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key")
PORT = 17473


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def loadavg():
    return float(open("/proc/loadavg").read().split()[0])


def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def dir_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d) if os.path.isfile(os.path.join(d, f)))


def checkpointed_bytes(data):
    """The store's size once a server has opened and closed it (its WAL checkpointed into the file)."""
    proc, _ = start(data)
    stop(proc)
    return dir_bytes(data)


def seeded(size):
    """The data directory of `size` records, seeded unless one of the same plan is there."""
    data = os.path.join(args.work, f"scale-{size}")
    plan_file = data + ".plan.json"
    plan = {"records": size, "seed": args.seed, "tenants": args.tenants}
    if not args.reseed and os.path.exists(plan_file):
        kept = json.load(open(plan_file))
        if kept["plan"] == plan and os.path.isdir(data):
            log(f"scale {size}: reusing {data} (seeded in {kept['seed']['seed_seconds']:.1f} s)")
            return data, kept["seed"]
    shutil.rmtree(data, ignore_errors=True)
    log(f"scale {size}: seeding ...")
    out = subprocess.run([args.scale, "seed", "--data-dir", data, "--records", str(size), "--tenants", str(args.tenants),
                          "--seed", str(args.seed), "--ids-out", data + ".ids.json"] + (["--per-record"] if args.per_record else []),
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    seed = json.loads(out)
    seed["store_bytes_after_seed"] = dir_bytes(data)
    seed["store_bytes_after_checkpoint"] = checkpointed_bytes(data)
    json.dump({"plan": plan, "seed": seed}, open(plan_file, "w"))
    log(f"scale {size}: seeded in {seed['seed_seconds']:.1f} s, {seed['store_bytes_after_seed'] / 2**20:.1f} MiB")
    return data, seed


def start(data):
    """Starts the server; returns it and the seconds from the process's start to a TCP connect succeeding."""
    t0 = time.monotonic()
    proc = subprocess.Popen([args.server, "--listen", f"127.0.0.1:{PORT}", "--admin-listen", "off", "--data-dir", data,
                             "--tls-ca", CA, "--tls-cert", SCRT, "--tls-key", SKEY, "--region", "eu-west-1",
                             "--log-level", "warning"], stdout=subprocess.DEVNULL)
    while True:
        try:
            socket.create_connection(("127.0.0.1", PORT), 0.2).close()
            return proc, time.monotonic() - t0
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"vpcep-server exited with {proc.returncode}")
            if time.monotonic() - t0 > 600:
                raise SystemExit("vpcep-server did not listen within 600 s")
            time.sleep(0.005)


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def measure(size, data, seed, rnd):
    load_start = loadavg()
    proc, startup = start(data)
    rss_listening = rss_kib(proc.pid)
    time.sleep(1)
    rss_start = rss_kib(proc.pid)
    out = subprocess.run([args.scale, "measure", "--port", str(PORT), "--ids", data + ".ids.json", *OPS,
                          "--callers", "64", "--warmup", str(args.warmup), "--duration", str(args.duration),
                          "--list-calls", str(args.list_calls), "--server-pids", str(proc.pid)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    rss_after = rss_kib(proc.pid)
    stop(proc)
    return {"size": size, "round": rnd, "seed": seed, "startup_s": startup, "rss_listening_kib": rss_listening,
            "rss_start_kib": rss_start, "rss_after_kib": rss_after, "store_bytes": dir_bytes(data),
            "loadavg_1m_start": load_start, "loadavg_1m_end": loadavg(),
            "scenarios": {r["scenario"]: r for r in rows if r["scenario"] != "after"}}


def cold_and_mixed(size, data, seed):
    """A fresh server: the cold reads first (nothing of the store in the process yet), then the mixed
    scenario on the same process. The mixed writes stay in the store (a few thousand records, and one
    new /22 subnet per writing caller and run)."""
    r = {}
    proc, r["startup_s"] = start(data)
    try:
        if "cold" in scenarios:
            out = subprocess.run([args.scale, "cold", "--port", str(PORT), "--ids", data + ".ids.json", *OPS,
                                  "--callers", "64", "--services", str(args.cold_services), "--seed", str(args.seed)],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            r["cold"] = json.loads(out)
            log(f"scale {size} cold: {r['cold']['services']} services in {r['cold']['total_s']:.1f} s, p50 "
                f"{r['cold']['p50_us']:.0f} µs, p99 {r['cold']['p99_us']:.0f} µs, errors {r['cold']['errors']}")
        if "mixed" in scenarios:
            tenants = ",".join(f"t{t:05d}" for t in range(min(args.mixed_tenants, seed["tenants"])))
            out = subprocess.run([args.scale, "mixed", "--port", str(PORT), "--ids", data + ".ids.json", *OPS,
                                  "--tenant-certs", args.certs, "--tenants", tenants, "--callers", "64",
                                  "--warmup", str(args.warmup), "--duration", str(args.duration), "--seed", str(args.seed),
                                  "--server-pids", str(proc.pid)],
                                 check=True, stdout=subprocess.PIPE, text=True).stdout
            r["mixed"] = {row["scenario"]: row for row in map(json.loads, filter(str.strip, out.splitlines()))}
            ro, mx = r["mixed"]["read-only"], r["mixed"]["mixed"]
            log(f"scale {size} mixed: {mx['rps']:.0f} calls/s ({mx['rps'] / ro['rps']:.0%} of read-only's {ro['rps']:.0f}), "
                f"p99 {mx['p99_us']:.0f} µs ({mx['p99_us'] / ro['p99_us']:.1f}x), errors {mx['errors']}")
    finally:
        stop(proc)
    return r


scenarios = set(filter(None, args.scenarios.split(",")))
sizes = [int(s) for s in args.sizes.split(",")]
results = []
with open(args.out, "a") as out:
    for size in sizes:
        data, seed = seeded(size)
        for rnd in range(args.rounds):
            r = measure(size, data, seed, rnd) if "scale" in scenarios else {
                "size": size, "round": rnd, "seed": seed, "loadavg_1m_start": loadavg(), "loadavg_1m_end": loadavg()}
            if scenarios & {"cold", "mixed"}:
                r["restart"] = cold_and_mixed(size, data, seed)
                r["loadavg_1m_end"] = loadavg()
            results.append(r)
            out.write(json.dumps(r, sort_keys=True) + "\n")
            out.flush()
            if "scale" in scenarios:
                log(f"scale {size} round {rnd + 1}: start-up {r['startup_s']:.2f} s, get p50 "
                    f"{r['scenarios']['get']['p50_us']:.0f} µs")


def med(size, f):
    values = [f(r) for r in results if r["size"] == size]
    return statistics.median(values) if values else None


def cell(size, f, fmt="{:.0f}"):
    v = med(size, f)
    return "–" if v is None else fmt.format(v)


header = "| metric | " + " | ".join(f"{s:,} records" for s in sizes) + " |"
print(header)
print("|---|" + "---|" * len(sizes))
rows = [] if "scale" not in scenarios else [
    ("tenants / services / endpoints", lambda s: next(f"{r['seed']['tenants']:,} / {r['seed']['services']:,} / {r['seed']['endpoints']:,}"
                                                      for r in results if r["size"] == s)),
    ("seeding time s", lambda s: cell(s, lambda r: r["seed"]["seed_seconds"], "{:.1f}")),
    ("store on disk MiB", lambda s: cell(s, lambda r: r["store_bytes"] / 2**20, "{:.1f}")),
    ("start-up s (process start to listening)", lambda s: cell(s, lambda r: r["startup_s"], "{:.2f}")),
    ("server RSS MiB after start", lambda s: cell(s, lambda r: r["rss_start_kib"] / 1024, "{:.1f}")),
    ("server RSS MiB after the measurements", lambda s: cell(s, lambda r: r["rss_after_kib"] / 1024, "{:.1f}")),
    ("get p50 µs (64 callers)", lambda s: cell(s, lambda r: r["scenarios"]["get"]["p50_us"])),
    ("get p99 µs", lambda s: cell(s, lambda r: r["scenarios"]["get"]["p99_us"])),
    ("get calls/s", lambda s: cell(s, lambda r: r["scenarios"]["get"]["rps"])),
    ("get errors", lambda s: cell(s, lambda r: r["scenarios"]["get"]["errors"])),
]
for case in ([] if "scale" not in scenarios else ["endpoints status=pending_acceptance", "endpoints tag env=dev", "services tag env=dev"]):
    rows.append((f"list {case}: matches", lambda s, c=case: cell(s, lambda r: r["scenarios"][f"list {c} first"]["matches"])))
    for variant in ["first", "deep token", "deep offset"]:
        rows.append((f"list {case}, {variant} p50 / p99 µs",
                     lambda s, c=case, v=variant: cell(s, lambda r: r["scenarios"][f"list {c} {v}"]["p50_us"]) + " / "
                     + cell(s, lambda r: r["scenarios"][f"list {c} {v}"]["p99_us"])))
    rows.append((f"list {case}: deep page index, token walk µs/page",
                 lambda s, c=case: cell(s, lambda r: r["scenarios"][f"list {c} deep token"]["page_index"]) + ", "
                 + cell(s, lambda r: r["scenarios"][f"list {c} deep token"]["walk_us_per_page"])))
if "cold" in scenarios:
    rows += [
        ("cold: services read once (64 callers)", lambda s: cell(s, lambda r: r["restart"]["cold"]["services"])),
        ("cold: total s", lambda s: cell(s, lambda r: r["restart"]["cold"]["total_s"], "{:.1f}")),
        ("cold: p50 / p99 µs", lambda s: cell(s, lambda r: r["restart"]["cold"]["p50_us"]) + " / "
         + cell(s, lambda r: r["restart"]["cold"]["p99_us"])),
        ("cold: errors", lambda s: cell(s, lambda r: r["restart"]["cold"]["errors"])),
    ]
if "mixed" in scenarios:
    for run in ["read-only", "mixed"]:
        rows += [
            (f"{run}: calls/s, p50 / p99 µs, errors", lambda s, m=run: cell(s, lambda r: r["restart"]["mixed"][m]["rps"]) + ", "
             + cell(s, lambda r: r["restart"]["mixed"][m]["p50_us"]) + " / " + cell(s, lambda r: r["restart"]["mixed"][m]["p99_us"])
             + ", " + cell(s, lambda r: r["restart"]["mixed"][m]["errors"])),
        ]
        for kind in ["get", "list"] + (["update", "create", "decide"] if run == "mixed" else []):
            rows.append((f"{run} {kind}: calls/s, p50 / p99 µs",
                         lambda s, m=run, k=kind: cell(s, lambda r: r["restart"]["mixed"][m]["kinds"][k]["rps"]) + ", "
                         + cell(s, lambda r: r["restart"]["mixed"][m]["kinds"][k]["p50_us"]) + " / "
                         + cell(s, lambda r: r["restart"]["mixed"][m]["kinds"][k]["p99_us"])))
    rows += [
        ("mixed / read-only calls/s (target ≥ 70%)", lambda s: cell(
            s, lambda r: 100 * r["restart"]["mixed"]["mixed"]["rps"] / r["restart"]["mixed"]["read-only"]["rps"], "{:.0f}%")),
        ("mixed / read-only p99 (target ≤ 2x)", lambda s: cell(
            s, lambda r: r["restart"]["mixed"]["mixed"]["p99_us"] / r["restart"]["mixed"]["read-only"]["p99_us"], "{:.2f}x")),
    ]
rows.append(("load average (1 min) start–end", lambda s: next(f"{r['loadavg_1m_start']:.1f}–{r['loadavg_1m_end']:.1f}"
                                                            for r in results if r["size"] == s)))
for name, f in rows:
    print(f"| {name} | " + " | ".join(f(s) for s in sizes) + " |")
