#!/usr/bin/env python3
"""Issue 10, defect 7: does a NOT_FOUND for another tenant's real service take as long as one for an
id that does not exist? Starts a real vpcep-server on a fresh data directory, has tenant alice publish
a private service (with the CLI), then tenant bob asks for it and for random ids/names, interleaved in
pairs (the order alternating within each pair), and prints per operation the median and p90 of each
kind and their ratio. Every answer must be NOT_FOUND, and the two kinds' Status bytes identical.

Needs only python3 and the built binaries (no gRPC, no protobuf package: the few request messages
are encoded by hand). Example, from the repository root after `swift build`:

    python3 Benchmarks/not_found_timing.py --bin .build/debug --pairs 300

--owner-reads makes alice read her service before every pair (her poll keeps it in the server's read
cache, the setting in which the audit saw the difference). --cold makes bob send a failing write before
every pair instead: every transaction moves the store's commit count on, which empties that cache.
"""
import argparse, json, os, shutil, socket, ssl, statistics, struct, subprocess, sys, tempfile, time, uuid

p = argparse.ArgumentParser()
p.add_argument("--bin", required=True, help="folder holding vpcep-server and vpcep")
p.add_argument("--pairs", type=int, default=300)
p.add_argument("--warmup", type=int, default=30, help="pairs run and discarded before measuring")
p.add_argument("--port", type=int, default=17543)
p.add_argument("--owner-reads", action="store_true")
p.add_argument("--cold", action="store_true")
p.add_argument("--json", help="also write the raw figures here")
args = p.parse_args()

REGION = "eu-west-1"
repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
work = tempfile.mkdtemp(prefix="vpcep-notfound-")
certs = os.path.join(work, "certs")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# --- protobuf, by hand: only length-delimited string fields are needed ---
def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    data = value.encode()
    return varint(number << 3 | 2) + varint(len(data)) + data if data else b""


def parse(message):
    """Top-level fields of a message: {number: [bytes or int, ...]}."""
    fields, i = {}, 0
    while i < len(message):
        key, shift = 0, 0
        while True:
            b = message[i]; i += 1
            key |= (b & 0x7F) << shift; shift += 7
            if not b & 0x80:
                break
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, shift = 0, 0
            while True:
                b = message[i]; i += 1
                value |= (b & 0x7F) << shift; shift += 7
                if not b & 0x80:
                    break
        elif wire == 2:
            length, shift = 0, 0
            while True:
                b = message[i]; i += 1
                length |= (b & 0x7F) << shift; shift += 7
                if not b & 0x80:
                    break
            value = message[i:i + length]; i += length
        else:
            raise ValueError(f"wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


class Connection:
    """One mutual-TLS connection speaking vpcep/1 (PROTOCOL.md §3-§4), one call at a time."""

    def __init__(self, name):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_3
        ctx.load_verify_locations(os.path.join(certs, "ca.crt"))
        ctx.load_cert_chain(os.path.join(certs, f"{name}.crt"), os.path.join(certs, f"{name}.key"))
        ctx.set_alpn_protocols(["vpcep/1"])
        raw = socket.create_connection(("127.0.0.1", args.port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
        self.next_id = 1
        self.buffer = b""

    def read_exactly(self, n):
        while len(self.buffer) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def call(self, method, request):
        """Returns (frame type, payload, seconds from sending the CALL to the end of the answer)."""
        call_id, self.next_id = self.next_id, self.next_id + 1
        # A fixed request id, so that two Status answers can be compared byte for byte.
        header = field(1, method) + field(2, REGION) + field(4, "t")
        payload = struct.pack(">I", len(header)) + header + request
        frame = struct.pack(">IBBHI", len(payload), 0x01, 0, 0, call_id) + payload
        start = time.perf_counter()
        self.sock.sendall(frame)
        while True:
            length, ftype, flags, _, cid = struct.unpack(">IBBHI", self.read_exactly(12))
            body = self.read_exactly(length)
            if ftype == 0x05:  # PING
                if not flags & 1:
                    self.sock.sendall(struct.pack(">IBBHI", 8, 0x05, 1, 0, 0) + body)
                continue
            if cid == call_id and ftype in (0x02, 0x03):
                return ftype, body, time.perf_counter() - start
            raise RuntimeError(f"unexpected frame type {ftype} for call {cid}")


def cli(*a, tenant="alice"):
    env = dict(os.environ, VPCEP_SERVER=f"127.0.0.1:{args.port}", VPCEP_REGION=REGION,
               VPCEP_CA=os.path.join(certs, "ca.crt"), VPCEP_CERT=os.path.join(certs, f"{tenant}.crt"),
               VPCEP_KEY=os.path.join(certs, f"{tenant}.key"))
    return subprocess.run([os.path.join(args.bin, "vpcep"), *a], env=env, check=True, capture_output=True,
                          text=True, timeout=60).stdout.strip()


def percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main():
    subprocess.run([os.path.join(repo, "certs", "generate.sh"), "--out", certs, "--tenant", "alice", "--tenant", "bob"],
                   check=True, capture_output=True)
    server = subprocess.Popen(
        [os.path.join(args.bin, "vpcep-server"), "--listen", f"127.0.0.1:{args.port}", "--admin-listen", "off",
         "--data-dir", os.path.join(work, "data"), "--tls-ca", os.path.join(certs, "ca.crt"),
         "--tls-cert", os.path.join(certs, "server.crt"), "--tls-key", os.path.join(certs, "server.key"),
         "--region", REGION, "--log-level", "error"], stdout=subprocess.DEVNULL)
    try:
        end = time.time() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", args.port), 0.2).close()
                break
            except OSError:
                if time.time() > end:
                    raise SystemExit("the server does not listen")
                time.sleep(0.1)
        return measure()
    finally:
        server.terminate()
        server.wait(30)
        shutil.rmtree(work, ignore_errors=True)


def measure():
    vpc = cli("vpc", "create", "--name", "prod", "--cidr", "10.0.0.0/16", "-q")
    subnet = cli("subnet", "create", "--vpc", vpc, "--name", "app", "--cidr", "10.0.1.0/24", "-q")
    lb = cli("lb", "create", "--vpc", vpc, "--subnet", subnet, "--name", "web", "--ingress", "198.19.128.0/17", "-q")
    service_id = cli("service", "create", "--vpc", vpc, "--backend-type", "lb", "--backend", lb,
                     "--port", "443:8443", "--name", "web", "--tag", "env=prod", "-q")
    service_name = json.loads(cli("service", "get", service_id, "--output", "json"))["service_name"]
    log(f"alice's service {service_id} ({service_name}); bob is not on its allow-list")

    bob, alice = Connection("bob"), Connection("alice")
    es, ep = "/vpcep.v1.EndpointServices/", "/vpcep.v1.Endpoints/"
    # A random id or name has the real one's shape and length; each is used once (always a first look-up).
    random_id = lambda: str(uuid.uuid4())
    random_name = lambda: service_name[: -len(service_id)] + str(uuid.uuid4())
    operations = [
        ("GetEndpointService id", es + "GetEndpointService", lambda ref: field(1, ref), service_id, random_id),
        ("GetEndpointService name", es + "GetEndpointService", lambda ref: field(2, ref), service_name, random_name),
        ("DescribeEndpointService id", es + "DescribeEndpointService", lambda ref: field(1, ref), service_id, random_id),
        ("DescribeEndpointService name", es + "DescribeEndpointService", lambda ref: field(2, ref), service_name,
         random_name),
        ("CreateEndpoint service_id", ep + "CreateEndpoint",
         lambda ref: field(1, ref) + field(3, "vpc-x") + field(4, "subnet-x"), service_id, random_id),
        ("CreateEndpoint service_name", ep + "CreateEndpoint",
         lambda ref: field(2, ref) + field(3, "vpc-x") + field(4, "subnet-x"), service_name, random_name),
    ]
    owner_read = field(1, service_id)
    results = []
    for label, method, encode, real, make_random in operations:
        times = {"real": [], "random": []}
        statuses = {"real": set(), "random": set()}
        for i in range(args.warmup + args.pairs):
            if args.owner_reads:
                ftype, _, _ = alice.call(es + "GetEndpointService", owner_read)
                assert ftype == 0x02, "alice cannot read her own service"
            if args.cold:
                ftype, _, _ = bob.call(ep + "CreateEndpoint", field(1, random_id()) + field(3, "v") + field(4, "s"))
                assert ftype == 0x03, "a write meant to fail succeeded"
            order = [("real", real), ("random", make_random())]
            if i % 2:
                order.reverse()
            for kind, ref in order:
                ftype, body, seconds = bob.call(method, encode(ref))
                if ftype != 0x03 or parse(body).get(1) != [5]:
                    raise SystemExit(f"{label} {kind}: expected NOT_FOUND, got frame {ftype} {parse(body)}")
                # The message names what was asked for (id or name), never which one: compare it whole.
                statuses[kind].add(body)
                if i >= args.warmup:
                    times[kind].append(seconds * 1e6)
        identical = statuses["real"] == statuses["random"] and len(statuses["real"]) == 1
        row = {"operation": label, "pairs": args.pairs, "identical_status": identical}
        for kind in ("real", "random"):
            row[f"{kind}_median_us"] = statistics.median(times[kind])
            row[f"{kind}_p90_us"] = percentile(times[kind], 0.9)
        row["median_ratio"] = row["real_median_us"] / row["random_median_us"]
        row["p90_ratio"] = row["real_p90_us"] / row["random_p90_us"]
        results.append(row)
        log(f"  {label}: done")

    print(f"| operation | foreign real: median / p90 (µs) | random: median / p90 (µs) | ratio median / p90 | Status bytes identical |")
    print("|---|---|---|---|---|")
    for r in results:
        print(f"| {r['operation']} | {r['real_median_us']:.0f} / {r['real_p90_us']:.0f} | "
              f"{r['random_median_us']:.0f} / {r['random_p90_us']:.0f} | {r['median_ratio']:.2f} / {r['p90_ratio']:.2f} | "
              f"{'yes' if r['identical_status'] else 'NO'} |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 0 if all(r["identical_status"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
