#!/usr/bin/env python3
"""Issue 11's watch scenario: vpcep beside etcd (Debian's etcd-server), each a fresh server on
127.0.0.1 with its data in a temporary folder, driven by `vpcep-bench watch` (Sources/vpcep-bench/
Watch.swift) over mutual TLS with the same certificates, in each layout asked for (`all`: every
watcher sees every write; `spread`: each watcher one resource of its own). Prints one JSON line per
run and the Markdown tables of BENCHMARKS.md, "Watch beside etcd". Called by watch.sh."""
import argparse, json, os, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--bench", required=True)
p.add_argument("--certs", required=True)
p.add_argument("--out", required=True, help="where the JSON lines of every run go")
p.add_argument("--rounds", type=int, default=int(os.environ.get("WATCH_ROUNDS", 1)))
p.add_argument("--watchers", default=os.environ.get("WATCHERS", "1000"))
p.add_argument("--watch-conns", default=os.environ.get("WATCH_CONNS", "40"))
p.add_argument("--rate", default=os.environ.get("RATE", "500"))
p.add_argument("--duration", default=os.environ.get("WATCH_DURATION", "20"))
p.add_argument("--tput-duration", default=os.environ.get("TPUT_DURATION", "8"))
p.add_argument("--layouts", default=os.environ.get("WATCH_LAYOUT", "all spread"),
               help="all, spread or both (space- or comma-separated), in that order")
args = p.parse_args()
LAYOUTS = args.layouts.replace(",", " ").split()
if not LAYOUTS or any(l not in ("all", "spread") for l in LAYOUTS):
    raise SystemExit(f"WATCH_LAYOUT: all and/or spread, not {args.layouts!r}")

CA, CRT, KEY = (os.path.join(args.certs, n) for n in ("ca.crt", "alice.crt", "alice.key"))
SCRT, SKEY = os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key")
TLS = ["--tls-ca", CA, "--tls-cert", CRT, "--tls-key", KEY]
VPCEP_PORT, ETCD_PORT, ETCD_PEER_PORT = 17573, 17579, 17580


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def wait_port(port, timeout=30):
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


def load_average():
    """The 1-minute load average: the machine is shared, and a busy one moves every figure."""
    return float(open("/proc/loadavg").read().split()[0])


def cpu_seconds(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def ensure_etcd():
    if shutil.which("etcd"):
        return
    log("etcd not found: apt-get install -y etcd-server")
    subprocess.run(["apt-get", "install", "-y", "etcd-server"], check=True, stdout=subprocess.DEVNULL)


def start_vpcep(data):
    proc = subprocess.Popen([args.server, "--listen", f"127.0.0.1:{VPCEP_PORT}", "--admin-listen", "off",
                             "--data-dir", data, "--tls-ca", CA, "--tls-cert", SCRT, "--tls-key", SKEY,
                             "--region", "eu-west-1", "--log-level", "warning"], stdout=subprocess.DEVNULL)
    wait_port(VPCEP_PORT)
    return proc, VPCEP_PORT


def start_etcd(data):
    # One member, clients over mutual TLS with the same CA and server certificate as vpcep; peers
    # (none) on plain loopback. Its defaults otherwise: every commit fsynced to its WAL.
    client = f"https://127.0.0.1:{ETCD_PORT}"
    peer = f"http://127.0.0.1:{ETCD_PEER_PORT}"
    proc = subprocess.Popen(["etcd", "--name", "bench", "--data-dir", data,
                             "--listen-client-urls", client, "--advertise-client-urls", client,
                             "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                             "--initial-cluster", f"bench={peer}", "--initial-cluster-state", "new",
                             "--cert-file", SCRT, "--key-file", SKEY, "--trusted-ca-file", CA, "--client-cert-auth",
                             "--logger", "zap", "--log-level", "error"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(ETCD_PORT)
    return proc, ETCD_PORT


def run(target, start, layout):
    with tempfile.TemporaryDirectory(prefix=f"watch-{target}-") as data:
        proc, port = start(data)
        try:
            cpu0 = cpu_seconds(proc.pid)
            load0 = load_average()
            other = ["--other-cert", os.path.join(args.certs, "bob.crt"), "--other-key", os.path.join(args.certs, "bob.key"),
                     "--operator-cert", os.path.join(args.certs, "ops.crt"), "--operator-key", os.path.join(args.certs, "ops.key")]
            out = subprocess.run([args.bench, "watch", "--target", target, "--layout", layout, "--port", str(port), *TLS, *other,
                                  "--watchers", args.watchers, "--watch-conns", args.watch_conns, "--rate", args.rate,
                                  "--duration", args.duration, "--tput-duration", args.tput_duration],
                                 check=True, capture_output=True, text=True, timeout=600)
            sys.stderr.write(out.stderr)
            r = json.loads(out.stdout.strip().splitlines()[-1])
            r["server_cpu_s"] = cpu_seconds(proc.pid) - cpu0
            r["loadavg_1m_start"], r["loadavg_1m_end"] = load0, load_average()
        finally:
            stop(proc)
    log(json.dumps(r, sort_keys=True))
    return r


def table(results, layout):
    results = [r for r in results if r["layout"] == layout]

    def med(target, key):
        vals = [r[key] for r in results if r["target"] == target and key in r]
        return statistics.median(vals) if vals else float("nan")

    spread = layout == "spread"
    seen = f"each write seen by one of {args.watchers} watchers" if spread else f"{args.watchers} watchers"

    rows = [("delivery p50 (µs)", "delivery_p50_us", "{:.0f}"), ("delivery p99 (µs)", "delivery_p99_us", "{:.0f}"),
            ("delivery p99.9 (µs)", "delivery_p999_us", "{:.0f}"), ("delivery max (µs)", "delivery_max_us", "{:.0f}"),
            ("deliveries", "deliveries", "{:.0f}"), ("still missing when the drain ended (≤ 30 s)", "missing_at_drain_end", "{:.0f}"),
            ("not delivered by the end of the run", "missing_after_drain", "{:.0f}"), ("duplicates", "duplicates", "{:.0f}"),
            ("watch streams ended early", "watch_stream_errors", "{:.0f}"),
            ("deliveries to the wrong watcher", "foreign_deliveries", "{:.0f}"),
            ("paced writes/s reached", "paced_rate", "{:.0f}"), ("paced write p50 / p99 (µs)", None, None),
            ("writes/s, 64 callers, no watchers", "tput_without", "{:.0f}"),
            (f"writes/s, 64 callers, {seen}", "tput_with", "{:.0f}"),
            ("writes/s, 64 callers, no watchers again (the watches ended)", "tput_without_again", "{:.0f}"),
            ("with / without (the mean of both)", "tput_ratio", "{:.2f}"),
            ("with / the first without (before 2026-12-01's method)", "tput_ratio_first", "{:.2f}"),
            (f"writes/s, 64 callers, {args.watchers} watchers seeing none of them", "tput_unseen", "{:.0f}"),
            ("with unseen / without", "tput_unseen_ratio", "{:.2f}"),
            ("server CPU s, whole run", "server_cpu_s", "{:.1f}"),
            ("load average (1 min) at start / end", None, None)]
    if spread:  # no unseen phase: a write no watcher sees would be another kind of write
        rows = [row for row in rows if row[1] not in ("tput_unseen", "tput_unseen_ratio")]
    print(f"Layout `{layout}`:")
    print()
    print("| | vpcep | etcd |")
    print("|---|---|---|")
    for name, key, fmt in rows:
        if key is None and name.startswith("load"):
            cells = [f"{med(t, 'loadavg_1m_start'):.1f} / {med(t, 'loadavg_1m_end'):.1f}" for t in ("vpcep", "etcd")]
        elif key is None:
            cells = [f"{med(t, 'paced_write_p50_us'):.0f} / {med(t, 'paced_write_p99_us'):.0f}" for t in ("vpcep", "etcd")]
        else:
            cells = [fmt.format(med(t, key)) for t in ("vpcep", "etcd")]
        print(f"| {name} | {cells[0]} | {cells[1]} |")
    vp99, ep99, ratio = med("vpcep", "delivery_p99_us"), med("etcd", "delivery_p99_us"), med("vpcep", "tput_ratio")
    print()
    print(f"- vpcep p99 ≤ etcd's: {vp99:.0f} vs {ep99:.0f} µs: {'met' if vp99 <= ep99 else 'missed'}")
    print(f"- vpcep p99 < 5 ms: {vp99:.0f} µs: {'met' if vp99 < 5000 else 'missed'}")
    print(f"- vpcep writes with {args.watchers} watchers ≥ 90% of without: {ratio:.2f}: {'met' if ratio >= 0.9 else 'missed'}")
    if spread:
        print(f"- (etcd's own ratio: {med('etcd', 'tput_ratio'):.2f})")
    else:
        print(f"- (etcd's own ratio: {med('etcd', 'tput_ratio'):.2f}; with watchers seeing none of the writes: "
              f"vpcep {med('vpcep', 'tput_unseen_ratio'):.2f}, etcd {med('etcd', 'tput_unseen_ratio'):.2f})")
    print()


ensure_etcd()
results = []
with open(args.out, "w") as out:
    for round in range(args.rounds):
        for layout in LAYOUTS:
            for target, start in (("vpcep", start_vpcep), ("etcd", start_etcd)):
                log(f"round {round + 1}/{args.rounds}, layout {layout}: {target}")
                r = run(target, start, layout)
                results.append(r)
                out.write(json.dumps(r, sort_keys=True) + "\n")
                out.flush()
for layout in LAYOUTS:
    table(results, layout)
