#!/usr/bin/env python3
"""Runs the issue-6 benchmark: vpcep, the grpc-swift-2 peer and (where installed) nginx, alternately
(A B C A B C ...), and prints per-scenario medians, min-max and ratios as Markdown. Called by run.sh.
All traffic goes to 127.0.0.1; every load is bounded in time."""
import argparse, asyncio, json, os, resource, shutil, signal, socket, ssl, statistics, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--peer", required=True)
p.add_argument("--bench", required=True)
p.add_argument("--work", required=True)
p.add_argument("--certs", required=True)
p.add_argument("--rounds", type=int, default=int(os.environ.get("ROUNDS", 3)))
p.add_argument("--warmup", type=float, default=float(os.environ.get("WARMUP", 3)))
p.add_argument("--duration", type=float, default=float(os.environ.get("DURATION", 6)))
p.add_argument("--hs-seconds", type=int, default=int(os.environ.get("HS_SECONDS", 4)))
p.add_argument("--idle-conns", type=int, default=int(os.environ.get("IDLE_CONNS", 10000)))
p.add_argument("--no-nginx", action="store_true")
args = p.parse_args()

CA, CRT, KEY = (os.path.join(args.certs, n) for n in ("ca.crt", "alice.crt", "alice.key"))
SCRT, SKEY = os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key")
TLS = ["--tls-ca", CA, "--tls-cert", CRT, "--tls-key", KEY]
VPCEP_PORT, PEER_PORT, NGINX_MTLS_PORT, NGINX_PORT = 17443, 17453, 17463, 17464
READS = [(1, 1), (1, 32), (16, 4), (64, 1)]
raw = []  # every measurement, written to work/results.json


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


def fresh_data(name):
    d = os.path.join(args.work, name)
    shutil.rmtree(d, ignore_errors=True)
    shutil.copytree(os.path.join(args.work, "seed"), d)
    return d


def start_vpcep(data):
    proc = subprocess.Popen([args.server, "--listen", f"127.0.0.1:{VPCEP_PORT}", "--admin-listen", "off",
                             "--data-dir", data, "--tls-ca", CA, "--tls-cert", SCRT, "--tls-key", SKEY,
                             "--region", "eu-west-1", "--log-level", "warning"],
                            stdout=subprocess.DEVNULL)
    wait_port(VPCEP_PORT)
    return proc


def start_peer(data):
    proc = subprocess.Popen([args.peer, "--port", str(PEER_PORT), "--data-dir", data, "--tls-ca", CA,
                             "--tls-cert", SCRT, "--tls-key", SKEY], stdout=subprocess.DEVNULL)
    wait_port(PEER_PORT)
    return proc


def bench(*a):
    out = subprocess.run([args.bench, *a], check=True, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1])


def proc_sample(pids):
    cpu, rss = 0.0, 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
            cpu += (int(f[11]) + int(f[12])) / tick
            for line in open(f"/proc/{pid}/status"):
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        except OSError:
            pass
    return cpu, rss


def record(system, scenario, metrics):
    raw.append({"system": system, "scenario": scenario, **metrics})
    log(f"  {system:6} {scenario:34} " + " ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                                for k, v in metrics.items() if k != "scenario"))


def reads(system, target, port, pids, service):
    for c, k in READS:
        r = bench("read", "--target", target, "--port", str(port), "--conns", str(c), "--inflight", str(k),
                  "--warmup", str(args.warmup), "--duration", str(args.duration), "--service", service,
                  "--server-pids", ",".join(map(str, pids)), *TLS)
        r.pop("scenario")
        record(system, f"read C={c} K={k}", r)


def s_time(port, mode, parallel):
    """Full (-new) or resumed (-reuse) mutual-TLS handshakes per second with openssl s_time."""
    # -www makes each connection send one request and read until the server closes: nginx answers
    # it; vpcep reads it as a malformed frame and closes. Either way the client reads the TLS 1.3
    # session ticket, without which OpenSSL 3.0's s_time never resumes ('r' marks a resumed one).
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", f"-{mode}", "-time", str(args.hs_seconds),
           "-cert", CRT, "-key", KEY, "-CAfile", CA, "-www", "/svc"]
    t0 = time.time()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True) for _ in range(parallel)]
    outs = [pr.communicate(timeout=60)[0] for pr in procs]
    wall = time.time() - t0
    total = resumed = marks = 0
    for out in outs:
        for line in out.splitlines():
            if "connections in" in line and "real seconds" in line:
                total += int(line.split()[0])
            elif line and set(line) <= set("*r"):
                resumed += line.count("r")
                marks += len(line)
    return {"per_s": total / wall, "resumed_pct": 100.0 * resumed / max(marks, 1)}


def handshakes(system, port):
    for mode in ("new", "reuse"):
        for par in (1, 8):
            record(system, f"handshakes -{mode} x{par}", s_time(port, mode, par))


async def hold_idle(port, n, pids):
    """Opens n mutual-TLS connections, holds them idle, and reports the server's RSS per connection."""
    ctx = ssl.create_default_context(cafile=CA)
    ctx.load_cert_chain(CRT, KEY)
    ctx.check_hostname = False
    _, rss0 = proc_sample(pids)
    sem = asyncio.Semaphore(64)
    conns = []

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port, ssl=ctx), 20)
                conns.append((r, w))
            except Exception:
                pass

    await asyncio.gather(*(one() for _ in range(n)))
    await asyncio.sleep(3)
    _, rss1 = proc_sample(pids)
    held = sum(1 for r, w in conns if not r.at_eof() and not w.is_closing())
    for _, w in conns:
        w.close()
    return {"held": held, "rss_before_kib": rss0, "rss_after_kib": rss1,
            "kib_per_conn": (rss1 - rss0) / max(held, 1)}


def idle(system, port, pids):
    record(system, f"idle mTLS conns ({args.idle_conns})", asyncio.run(hold_idle(port, args.idle_conns, pids)))


NGINX_CONF = """worker_processes auto;
worker_rlimit_nofile 20000;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 20000; }}
http {{
  access_log off;
  client_body_temp_path {work}/tmp; proxy_temp_path {work}/tmp; fastcgi_temp_path {work}/tmp;
  uwsgi_temp_path {work}/tmp; scgi_temp_path {work}/tmp;
  keepalive_requests 10000000; keepalive_timeout 300s;
  ssl_certificate {crt}; ssl_certificate_key {key};
  ssl_protocols TLSv1.3; ssl_ecdh_curve prime256v1;
  ssl_session_cache shared:SSL:10m; ssl_session_tickets on;
  default_type application/octet-stream;
  # Mutual TLS, as vpcep: for handshakes and idle connections.
  server {{ listen 127.0.0.1:{mport} ssl; ssl_verify_client on; ssl_client_certificate {ca};
           root {work}/www; location / {{ }} }}
  # The same without asking for a client certificate, because wrk cannot present one; with
  # keep-alive the handshake is outside the measured window either way.
  server {{ listen 127.0.0.1:{port} ssl; root {work}/www; location / {{ }} }}
}}
"""


def start_nginx(size):
    w = os.path.join(args.work, "nginx")
    shutil.rmtree(w, ignore_errors=True)
    os.makedirs(os.path.join(w, "www"))
    os.makedirs(os.path.join(w, "tmp"))
    with open(os.path.join(w, "www", "svc"), "wb") as f:
        f.write(b"x" * size)
    conf = os.path.join(w, "nginx.conf")
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(work=w, crt=SCRT, key=SKEY, ca=CA, mport=NGINX_MTLS_PORT, port=NGINX_PORT))
    subprocess.run(["nginx", "-c", conf, "-p", w, "-g", "daemon on;"], check=True)
    wait_port(NGINX_PORT)
    master = int(open(os.path.join(w, "nginx.pid")).read())
    workers = [int(x) for x in subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout.split()]
    return master, [master, *workers]


def wrk_reads(pids):
    for c in sorted({c for c, _ in READS}):
        base = ["wrk", "-t", str(min(c, 2)), "-c", str(c), "--latency", f"https://127.0.0.1:{NGINX_PORT}/svc"]
        subprocess.run(base[:-2] + ["-d", f"{int(args.warmup)}s", base[-1]], capture_output=True, timeout=120)
        cpu0, _ = proc_sample(pids)
        out = subprocess.run(base[:-2] + ["-d", f"{int(args.duration)}s", "--latency", base[-1]],
                             capture_output=True, text=True, timeout=120).stdout
        cpu1, rss = proc_sample(pids)
        m = {"errors": 0}
        for line in out.splitlines():
            parts = line.split()
            if line.startswith("Requests/sec:"):
                m["rps"] = float(parts[1])
            elif len(parts) == 2 and parts[0] in ("50%", "90%", "99%"):
                v = parts[1]
                us = float(v[:-2]) if v.endswith("us") else float(v[:-2]) * 1e3 if v.endswith("ms") else float(v[:-1]) * 1e6
                m[f"p{parts[0][:-1]}_us"] = us
            elif "requests in" in line:
                m["calls"] = int(parts[0])
            elif "Non-2xx" in line or "Socket errors" in line:
                m["errors"] += sum(int(x.strip(",")) for x in parts if x.strip(",").isdigit())
        m["server_cpu_us_per_call"] = (cpu1 - cpu0) / max(m.get("calls", 1), 1) * 1e6
        m["server_rss_kib"] = rss
        record("nginx", f"read C={c} K=1", m)


def main():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    os.makedirs(args.work, exist_ok=True)
    seed = os.path.join(args.work, "seed")
    shutil.rmtree(seed, ignore_errors=True)
    proc = start_vpcep(seed)
    s = bench("seed", "--port", str(VPCEP_PORT), *TLS)
    stop(proc)
    service, size = s["serviceId"], s["responseBytes"]
    log(f"seeded service {service}; its GetEndpointService response is {size} bytes")
    nginx = None
    if not args.no_nginx and shutil.which("nginx") and shutil.which("wrk"):
        nginx = start_nginx(size)
    else:
        log("nginx or wrk not installed: no nginx columns (apt-get install nginx wrk)")
    try:
        for rnd in range(1, args.rounds + 1):
            log(f"round {rnd}/{args.rounds}")
            proc = start_vpcep(fresh_data("data-vpcep"))
            reads("vpcep", "vpcep", VPCEP_PORT, [proc.pid], service)
            handshakes("vpcep", VPCEP_PORT)
            if rnd == 1:  # 10,000 handshakes take a while; once is enough for memory
                idle("vpcep", VPCEP_PORT, [proc.pid])
                # Issue 11: an idle Watch's server memory beyond its connection (bytes_per_watch).
                w = bench("idle-watches", "--port", str(VPCEP_PORT), "--conns", "1000", "--settle", "3",
                          "--server-pids", str(proc.pid), *TLS)
                record("vpcep", w.pop("scenario"), w)
            r = bench("creates", "--port", str(VPCEP_PORT), "--callers", "64", "--warmup", "1",
                      "--duration", str(args.duration), "--server-pids", str(proc.pid), *TLS)
            r.pop("scenario")
            record("vpcep", "durable creates, 64 callers", r)
            stop(proc)

            proc = start_peer(fresh_data("data-peer"))
            reads("grpc", "grpc", PEER_PORT, [proc.pid], service)
            stop(proc)

            if nginx:
                wrk_reads(nginx[1])
                handshakes("nginx", NGINX_MTLS_PORT)
                if rnd == 1:  # 10,000 handshakes take a while; once is enough for memory
                    idle("nginx", NGINX_MTLS_PORT, nginx[1])
    finally:
        if nginx:
            os.kill(nginx[0], signal.SIGQUIT)
        with open(os.path.join(args.work, "results.json"), "w") as f:
            json.dump(raw, f, indent=1)
    table()


def table():
    def vals(system, scenario, key):
        return [r[key] for r in raw if r["system"] == system and r["scenario"] == scenario and key in r]

    def cell(v, fmt="{:.0f}"):
        if not v:
            return "–"
        return f"{fmt.format(statistics.median(v))} ({fmt.format(min(v))}–{fmt.format(max(v))})"

    def med(system, scenario, key):
        v = vals(system, scenario, key)
        return statistics.median(v) if v else None

    def ratio(a, b):
        return f"{a / b:.2f}x" if a and b else "–"

    print(f"\nMedians of {args.rounds} rounds, (min–max) after each; warm-up {args.warmup:g} s, measure {args.duration:g} s.\n")
    print("| scenario | metric | vpcep | grpc-swift-2 | nginx (same conns, K=1) | vpcep/grpc | vpcep/nginx |")
    print("|---|---|---|---|---|---|---|")
    for c, k in READS:
        sc, nsc = f"read C={c} K={k}", f"read C={c} K=1"
        for key, name, fmt in (("rps", "calls/s", "{:.0f}"), ("p50_us", "p50 µs", "{:.0f}"), ("p90_us", "p90 µs", "{:.0f}"),
                               ("p99_us", "p99 µs", "{:.0f}"), ("p999_us", "p99.9 µs", "{:.0f}"),
                               ("server_cpu_us_per_call", "server CPU µs/call", "{:.1f}"),
                               ("server_rss_kib", "server RSS KiB", "{:.0f}"), ("errors", "errors", "{:.0f}")):
            print(f"| {sc} | {name} | {cell(vals('vpcep', sc, key), fmt)} | {cell(vals('grpc', sc, key), fmt)} | "
                  f"{cell(vals('nginx', nsc, key), fmt)} | {ratio(med('vpcep', sc, key), med('grpc', sc, key))} | "
                  f"{ratio(med('vpcep', sc, key), med('nginx', nsc, key))} |")
    for mode in ("new", "reuse"):
        for par in (1, 8):
            sc = f"handshakes -{mode} x{par}"
            print(f"| {sc} | handshakes/s | {cell(vals('vpcep', sc, 'per_s'))} | – | {cell(vals('nginx', sc, 'per_s'))} | – | "
                  f"{ratio(med('vpcep', sc, 'per_s'), med('nginx', sc, 'per_s'))} |")
            print(f"| {sc} | % resumed | {cell(vals('vpcep', sc, 'resumed_pct'))} | – | {cell(vals('nginx', sc, 'resumed_pct'))} | – | – |")
    sc = f"idle mTLS conns ({args.idle_conns})"
    for key, name in (("held", "connections held"), ("kib_per_conn", "server KiB per connection")):
        print(f"| {sc} | {name} | {cell(vals('vpcep', sc, key), '{:.1f}')} | – | {cell(vals('nginx', sc, key), '{:.1f}')} | – | "
              f"{ratio(med('vpcep', sc, key), med('nginx', sc, key))} |")
    sc = "durable creates, 64 callers"
    for key, name in (("rps", "creates/s"), ("p50_us", "p50 µs"), ("p99_us", "p99 µs"), ("errors", "errors")):
        print(f"| {sc} | {name} | {cell(vals('vpcep', sc, key))} | – | – | – | – |")


main()
