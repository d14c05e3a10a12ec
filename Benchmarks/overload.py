#!/usr/bin/env python3
"""Overload scenarios of issue 10 against one vpcep-server, loopback only, each bounded in count and
time. Prints one JSON object per scenario on stdout (progress on stderr).

  nonreading  Seeds 1,000 VPCs, then ten connections each pipeline CALLS ListVpcs{limit: 1000}
              (about 130 KB per answer) and never read. Reports the server's RSS before, its peak
              while they hang (VmHWM), and after they close (the memory must come back).
  flood       Opens TCP connections that send nothing from 127.0.0.2 at RATE per second for
              SECONDS, while a normal client on 127.0.0.1 makes 100 calls, each on a new mutual-TLS
              connection (connect, handshake, Health/Check). Reports how many were served within
              100 ms, and the latency quantiles.
  refusal     50 times: a client whose certificate the server refuses (another CA; needs
              --other-certs) completes its side of the handshake, sends a 256 KiB CALL and only
              then reads. Counts how many read the server's alert, and how many a bare EOF or
              reset (the server closing with the CALL unread resets the connection, and the reset
              throws away the alert before the client reads it; issue 10, defect 6).

Usage: overload.py --server BIN --certs DIR [--other-certs DIR] [--scenario nonreading|flood|refusal|all]
The certificate folder is what certs/generate.sh --tenant alice makes.
"""
import argparse, asyncio, json, multiprocessing, os, resource, shutil, signal, socket, ssl, struct, subprocess, sys
import tempfile, time

p = argparse.ArgumentParser()
p.add_argument("--server", required=True)
p.add_argument("--certs", required=True)
p.add_argument("--other-certs", help="a PKI made by certs/generate.sh --tenant eve, for the refusal scenario")
p.add_argument("--scenario", default="all", choices=["nonreading", "flood", "refusal", "all"])
p.add_argument("--port", type=int, default=17543)
p.add_argument("--connections", type=int, default=10)
p.add_argument("--calls", type=int, default=1000, help="ListVpcs calls each non-reading connection pipelines")
p.add_argument("--hang-seconds", type=float, default=20)
p.add_argument("--rate", type=int, default=2500, help="flood connections per second")
p.add_argument("--seconds", type=float, default=10, help="flood duration")
p.add_argument("--probes", type=int, default=100)
p.add_argument("--probe-after", type=float, default=3, help="seconds of flood before the first probe")
args = p.parse_args()

CA, CRT, KEY = (os.path.join(args.certs, n) for n in ("ca.crt", "alice.crt", "alice.key"))
SCRT, SKEY = os.path.join(args.certs, "server.crt"), os.path.join(args.certs, "server.key")
REGION = "eu-west-1"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# -- wire (docs/PROTOCOL.md §3, §11) -------------------------------------------------------------

def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field_bytes(number, value):
    return varint(number << 3 | 2) + varint(len(value)) + value


def field_varint(number, value):
    return varint(number << 3) + varint(value)


def call_frame(call_id, method, request=b"", timeout_ms=30000):
    header = field_bytes(1, method.encode()) + field_bytes(2, REGION.encode()) + field_varint(3, timeout_ms)
    payload = struct.pack(">I", len(header)) + header + request
    return struct.pack(">IBBHI", len(payload), 1, 0, 0, call_id) + payload


def status_code(payload):
    """Field 1 (code) of a Status; 0 when absent."""
    if payload[:1] == b"\x08":
        value, shift, i = 0, 0, 1
        while True:
            b = payload[i]
            value |= (b & 0x7F) << shift
            i += 1
            shift += 7
            if not b & 0x80:
                return value
    return 0


def client_context():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.load_verify_locations(CA)
    ctx.load_cert_chain(CRT, KEY)
    ctx.set_alpn_protocols(["vpcep/1"])
    return ctx


async def read_frame(reader):
    length, ftype, flags, _, call_id = struct.unpack(">IBBHI", await reader.readexactly(12))
    return ftype, flags, call_id, await reader.readexactly(length)


async def connect(port, ctx):
    return await asyncio.open_connection("127.0.0.1", port, ssl=ctx, server_hostname="localhost")


# -- server process ------------------------------------------------------------------------------

def start_server(data, port):
    cmd = [args.server, "--listen", f"127.0.0.1:{port}", "--admin-listen", "off", "--data-dir", data,
           "--tls-ca", CA, "--tls-cert", SCRT, "--tls-key", SKEY, "--log-level", "error"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
    end = time.time() + 30
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"vpcep-server did not listen on {port}")


def stop_server(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def memory(pid):
    """VmRSS and VmHWM (peak RSS) of a process, in MB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


# -- scenario: connections that never read -------------------------------------------------------

async def seed_vpcs(port, count):
    reader, writer = await connect(port, client_context())
    window, sent, done, failed = 64, 0, 0, 0
    while done < count:
        while sent < count and sent - done < window:
            sent += 1
            request = field_bytes(1, f"bench-{sent}".encode()) + field_bytes(2, f"10.{sent // 256}.{sent % 256}.0/24".encode())
            writer.write(call_frame(sent, "/vpcep.v1.Inventory/CreateVpc", request))
        await writer.drain()
        ftype, flags, _, payload = await read_frame(reader)
        if ftype == 2 and flags & 1:
            done += 1
        elif ftype == 3:
            done += 1
            failed += status_code(payload) != 0
    writer.close()
    if failed:
        raise SystemExit(f"{failed} of {count} CreateVpc calls failed")
    # One answer's size, as the non-reading clients will ask for it.
    reader, writer = await connect(port, client_context())
    writer.write(call_frame(1, "/vpcep.v1.Inventory/ListVpcs", field_bytes(1, field_varint(1, 1000))))
    _, _, _, payload = await read_frame(reader)
    writer.close()
    return len(payload)


async def hang(port, calls):
    """A connection that pipelines `calls` ListVpcs and never reads; returns its transport."""
    ctx = client_context()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(asyncio.Protocol, "127.0.0.1", port, ssl=ctx, server_hostname="localhost")
    transport.pause_reading()
    request = field_bytes(1, field_varint(1, 1000))
    transport.write(b"".join(call_frame(i, "/vpcep.v1.Inventory/ListVpcs", request, timeout_ms=0)
                             for i in range(1, calls + 1)))
    return transport


async def nonreading():
    data = tempfile.mkdtemp(prefix="vpcep-overload-")
    proc = start_server(data, args.port)
    try:
        size = await seed_vpcs(args.port, 1000)
        log(f"seeded 1,000 VPCs; one ListVpcs(limit 1000) answer is {size} bytes")
        await asyncio.sleep(1)
        before, _ = memory(proc.pid)
        transports = [await hang(args.port, args.calls) for _ in range(args.connections)]
        samples = []
        end = time.time() + args.hang_seconds
        while time.time() < end:
            await asyncio.sleep(0.5)
            samples.append(memory(proc.pid)[0])
        during, peak = memory(proc.pid)
        for t in transports:
            t.abort()
        after = []
        for _ in range(10):
            await asyncio.sleep(0.5)
            after.append(memory(proc.pid)[0])
        # The server still serves.
        reader, writer = await connect(args.port, client_context())
        writer.write(call_frame(1, "/vpcep.v1.Health/Check"))
        ftype, _, _, _ = await read_frame(reader)
        writer.close()
        result = {
            "scenario": "nonreading", "connections": args.connections, "calls_per_connection": args.calls,
            "answer_bytes": size, "hang_seconds": args.hang_seconds,
            "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1),
            "rss_last_while_hanging_mb": round(during, 1), "rss_5s_after_close_mb": round(after[-1], 1),
            "rss_samples_mb": [round(s, 1) for s in samples], "served_after": ftype == 2,
        }
        print(json.dumps(result), flush=True)
    finally:
        stop_server(proc)
        shutil.rmtree(data, ignore_errors=True)


# -- scenario: handshake-slot flood --------------------------------------------------------------

def flood_process(port, rate, seconds, result):
    """Connects from 127.0.0.2 at `rate` per second for `seconds`, never sending; closes what the
    server closes, and everything at the end."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    limit = hard - 64

    async def run():
        held = set()
        opened = failed = 0

        async def one():
            nonlocal opened, failed
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=("127.0.0.2", 0))
            except OSError:
                failed += 1
                return
            opened += 1
            held.add(writer)
            try:
                await reader.read(1)  # until the server closes it
            except OSError:
                pass
            held.discard(writer)
            writer.close()

        tasks = set()
        start = time.monotonic()
        n = 0
        while time.monotonic() - start < seconds:
            due = int((time.monotonic() - start) * rate)
            while n < due and len(held) + len(tasks) < limit:
                n += 1
                task = asyncio.ensure_future(one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            await asyncio.sleep(0.002)
        elapsed = time.monotonic() - start
        peak_held = len(held)
        for w in list(held):
            w.transport.abort()
        for t in list(tasks):
            t.cancel()
        await asyncio.sleep(0.2)
        result.update(attempted=n, opened=opened, failed=failed, held_at_end=peak_held,
                      rate_achieved=round(opened / elapsed))

    asyncio.run(run())


async def probe_once(port, ctx):
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(connect(port, ctx), 5)
        writer.write(call_frame(1, "/vpcep.v1.Health/Check"))
        ftype, _, _, _ = await asyncio.wait_for(read_frame(reader), 5)
        writer.close()
        ok = ftype == 2
    except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ssl.SSLError):
        ok = False
    return ok, (time.perf_counter() - start) * 1000


async def flood():
    data = tempfile.mkdtemp(prefix="vpcep-overload-")
    proc = start_server(data, args.port)
    try:
        ctx = client_context()
        manager = multiprocessing.Manager()
        result = manager.dict()
        flooder = multiprocessing.Process(target=flood_process, args=(args.port, args.rate, args.seconds, result))
        flooder.start()
        await asyncio.sleep(min(args.probe_after, args.seconds / 2))  # let the flood fill what it can
        latencies, failures = [], 0
        probe_end = time.time() + args.seconds
        for _ in range(args.probes):
            if time.time() > probe_end:
                break
            ok, ms = await probe_once(args.port, ctx)
            failures += not ok
            latencies.append(ms if ok else float("inf"))
            await asyncio.sleep(0.03)
        flooder.join(args.seconds + 30)
        latencies.sort()
        n = len(latencies)
        q = lambda f: round(latencies[min(n - 1, int(f * n))], 1)
        out = {
            "scenario": "flood", "flood_rate": args.rate, "flood_seconds": args.seconds, "flood": dict(result),
            "probes": n, "failed": failures, "within_100ms": sum(1 for x in latencies if x <= 100),
            "p50_ms": q(0.5), "p99_ms": q(0.99), "max_ms": round(latencies[-1], 1) if n else None,
            "server_rss_mb": round(memory(proc.pid)[0], 1),
        }
        print(json.dumps(out), flush=True)
    finally:
        stop_server(proc)
        shutil.rmtree(data, ignore_errors=True)


# -- scenario: the refusal alert survives a client that writes at once ----------------------------

def refusal():
    data = tempfile.mkdtemp(prefix="vpcep-overload-")
    proc = start_server(data, args.port)
    try:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(CA)
        ctx.load_cert_chain(os.path.join(args.other_certs, "eve.crt"), os.path.join(args.other_certs, "eve.key"))
        ctx.set_alpn_protocols(["vpcep/1"])
        big = call_frame(1, "/vpcep.v1.Health/WhoAmI", field_bytes(1, b"x" * 262144))
        outcomes = {}
        for _ in range(50):
            sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", args.port), 5), server_hostname="localhost")
            try:
                sock.sendall(big)
                outcome = "data" if sock.recv(100) else "eof"
            except ssl.SSLError as e:
                outcome = "alert" if "alert" in str(e).lower() else "eof"
            except OSError as e:
                outcome = "reset" if isinstance(e, (ConnectionResetError, BrokenPipeError)) else type(e).__name__
            sock.close()
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
        print(json.dumps({"scenario": "refusal", "tries": 50, "outcomes": outcomes}), flush=True)
    finally:
        stop_server(proc)
        shutil.rmtree(data, ignore_errors=True)


if args.scenario in ("refusal", "all") and args.other_certs:
    refusal()
if args.scenario in ("nonreading", "all"):
    asyncio.run(nonreading())
if args.scenario in ("flood", "all"):
    asyncio.run(flood())
