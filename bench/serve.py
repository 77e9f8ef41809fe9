"""Push-to-applied latency and idle cost of `keelson serve` (see bench/serve.sh).

Latency: from the signed webhook request to the pushed value readable on both clusters
(the git push itself happens before the clock starts, as GitHub would have it before it
sends the webhook). Idle: CPU and memory of the engine over a quiet period afterwards.
"""
import base64, hashlib, hmac, http.client, json, os, shutil, socket, ssl, statistics
import subprocess, sys, tempfile, threading, time, uuid

KEELSON, KUBECONFIG, PUSHES, IDLE = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
TARGETS = 100
SECRET = b"bench-secret"


def kubeconfig_clusters(path):
    """{context: (host, port, ca, cert, key)} from the harness's kubeconfig (its fixed layout:
    top-level lists whose items start with "- " at column 0, folded `>-` values)."""
    sections, section, item, pending = {}, None, None, None
    for line in open(path).read().splitlines():
        if pending:
            item[pending] = line.strip()
            pending = None
            continue
        if not line.startswith((" ", "-")):
            section = line.split(":", 1)[0]
            sections.setdefault(section, [])
            continue
        if line.startswith("- "):
            item = {}
            sections[section].append(item)
        key, _, val = line.strip().lstrip("- ").partition(":")
        val = val.strip()
        if val == ">-":
            pending = key
        elif val:
            item[key] = val
    clusters = {c["name"]: c for c in sections.get("clusters", [])}
    users = {u["name"]: u for u in sections.get("users", [])}
    out = {}
    tmp = tempfile.mkdtemp()
    for ctx, c in clusters.items():
        u = users[f"{ctx}-admin"]
        files = []
        for i, data in enumerate([c["certificate-authority-data"], u["client-certificate-data"], u["client-key-data"]]):
            p = os.path.join(tmp, f"{ctx}-{i}.pem")
            open(p, "wb").write(base64.b64decode(data))
            files.append(p)
        host, port = c["server"].removeprefix("https://").split(":")
        out[ctx] = (host, int(port), *files)
    return out


class Api:
    """A keep-alive HTTPS client of one API server."""

    def __init__(self, host, port, ca, cert, key):
        ctx = ssl.create_default_context(cafile=ca)
        ctx.load_cert_chain(cert, key)
        self.conn = http.client.HTTPSConnection(host, port, context=ctx, timeout=10)

    def get(self, path):
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        return r.status, body


def git(cwd, *args):
    env = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@keelson.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@keelson.invalid")
    return subprocess.run(["git", "-C", cwd, *args], check=True, capture_output=True, env=env, text=True).stdout.strip()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_target(work, t, value):
    d = os.path.join(work, "apps", f"t{t:03}")
    os.makedirs(d, exist_ok=True)
    docs = [f"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: bench-t{t:03}\n"]
    for i in range(3):
        v = value if i == 0 else "static"
        docs.append(f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  v: \"{v}\"\n")
    open(os.path.join(d, "objects.yaml"), "w").write("---\n".join(docs))
    open(os.path.join(d, "kustomization.yaml"), "w").write(
        f"namespace: bench-t{t:03}\nresources:\n- objects.yaml\n")


def main():
    apis = kubeconfig_clusters(KUBECONFIG)
    assert sorted(apis) == ["e2e-1", "e2e-2"], apis
    base = tempfile.mkdtemp(prefix="keelson-bench-serve-")
    bare, work = os.path.join(base, "deploy.git"), os.path.join(base, "work")
    os.makedirs(bare)
    git(bare, "init", "-q", "--bare", "-b", "main")
    os.makedirs(work)
    git(work, "init", "-q", "-b", "main")
    git(work, "remote", "add", "origin", bare)
    targets = "".join(
        f"- name: t{t:03}\n  path: apps/t{t:03}\n  clusterSelector: {{all: \"yes\"}}\n" for t in range(TARGETS))
    open(os.path.join(work, "keelson.yaml"), "w").write(
        "clusters:\n"
        "- name: one\n  labels: {all: \"yes\"}\n  kubeconfig: {context: e2e-1}\n"
        "- name: two\n  labels: {all: \"yes\"}\n  kubeconfig: {context: e2e-2}\n"
        "targets:\n" + targets)
    for t in range(TARGETS):
        write_target(work, t, "0")
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", "initial")
    git(work, "push", "-q", "origin", "main")

    port = free_port()
    daemon = subprocess.Popen(["git", "daemon", "--export-all", "--reuseaddr", "--listen=127.0.0.1",
                               f"--port={port}", f"--base-path={base}", base],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    url = f"git://127.0.0.1:{port}/deploy.git"
    secret_file = os.path.join(base, "secret")
    open(secret_file, "wb").write(SECRET)
    config = os.path.join(base, "serve.yaml")
    open(config, "w").write(
        f"listen: 127.0.0.1:0\nstateDir: {base}/state\nkubeconfig: {KUBECONFIG}\n"
        f"webhook: {{secretFile: {secret_file}}}\n"
        f"repositories:\n- url: {url}\n  ref: main\n  github: bench/deploy\n  poll: \"0 */1 * * * *\"\n")
    log = open(os.path.join(base, "serve.log"), "w+")
    engine = subprocess.Popen([KEELSON, "serve", "--config", config], stderr=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, text=True, env=dict(os.environ, RUST_LOG=os.environ.get("BENCH_LOG", "warn"), NO_COLOR="1"))
    first = engine.stderr.readline()
    addr = first.strip().rsplit("http://", 1)[1]
    threading.Thread(target=lambda: shutil.copyfileobj(engine.stderr, log), daemon=True).start()
    host, hport = addr.split(":")

    clients = {ctx: Api(*a) for ctx, a in apis.items()}

    def value_of(ctx, t):
        try:
            status, body = clients[ctx].get(f"/api/v1/namespaces/bench-t{t:03}/configmaps/cm-0")
        except Exception:
            clients[ctx] = Api(*apis[ctx])
            return None
        if status != 200:
            return None
        return json.loads(body)["data"]["v"]

    start = time.time()
    while not all(value_of(ctx, t) == "0" for ctx in clients for t in (0, TARGETS - 1)):
        time.sleep(0.2)
        if time.time() - start > 600:
            sys.exit("initial sync did not finish in 10 minutes")
    # Wait for the status API to show every pair synced.
    while True:
        c = http.client.HTTPConnection(host, int(hport), timeout=10)
        c.request("GET", "/api/v1/targets")
        rows = json.loads(c.getresponse().read())["targets"]
        if len(rows) == 2 * TARGETS and all(r["phase"] == "synced" for r in rows):
            break
        time.sleep(0.2)
    print(f"initial sync of {TARGETS} targets x 2 clusters: {time.time() - start:.1f} s", flush=True)

    before = git(work, "rev-parse", "HEAD")
    latencies = []
    for i in range(1, PUSHES + 1):
        t = (i * 37) % TARGETS
        value = f"v{i}"
        write_target(work, t, value)
        git(work, "commit", "-q", "-am", f"push {i}")
        tp = time.perf_counter()
        git(work, "push", "-q", "origin", "main")
        after = git(work, "rev-parse", "HEAD")
        payload = json.dumps({
            "ref": "refs/heads/main", "before": before, "after": after, "created": False,
            "deleted": False, "forced": False, "commits": [], "head_commit": None,
            "repository": {"full_name": "bench/deploy", "clone_url": url},
        }).encode()
        sig = "sha256=" + hmac.new(SECRET, payload, hashlib.sha256).hexdigest()
        if os.environ.get("BENCH_VERBOSE"):
            print("before webhook:", [value_of(ctx, t) for ctx in clients], "want", value, flush=True)
        t0 = time.perf_counter()
        c = http.client.HTTPConnection(host, int(hport), timeout=10)
        c.request("POST", "/hooks/github", payload, {
            "Content-Type": "application/json", "X-GitHub-Event": "push",
            "X-GitHub-Delivery": str(uuid.uuid4()), "X-Hub-Signature-256": sig})
        code = c.getresponse().status
        assert code == 202, code
        pending = set(clients)
        while pending:
            for ctx in list(pending):
                if value_of(ctx, t) == value:
                    pending.discard(ctx)
            if pending:
                time.sleep(0.005)
            if time.perf_counter() - t0 > 60:
                sys.exit(f"push {i} not applied in 60 s")
        latencies.append(time.perf_counter() - t0)
        if os.environ.get("BENCH_VERBOSE"):
            print(f"push {i} target t{t:03}: {latencies[-1] * 1000:.1f} ms (push took {t0 - tp:.3f} s)", flush=True)
        before = after
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[min(len(latencies) - 1, int(round(0.99 * (len(latencies) - 1))))]
    print(f"push-to-applied over {PUSHES} pushes ({TARGETS} targets, 2 clusters): "
          f"p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, min {latencies[0] * 1000:.0f} ms, "
          f"max {latencies[-1] * 1000:.0f} ms", flush=True)

    time.sleep(5)
    tick = os.sysconf("SC_CLK_TCK")

    def cpu_seconds():
        fields = open(f"/proc/{engine.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / tick

    c0, w0 = cpu_seconds(), time.time()
    time.sleep(IDLE)
    c1, w1 = cpu_seconds(), time.time()
    rss = next(l for l in open(f"/proc/{engine.pid}/status") if l.startswith("VmRSS")).split()[1]
    print(f"idle {IDLE} s ({TARGETS} targets x 2 clusters, poll every minute): CPU "
          f"{100 * (c1 - c0) / (w1 - w0):.2f} % of one core, RSS {int(rss) / 1024:.0f} MiB", flush=True)
    if os.environ.get("BENCH_VERBOSE"):
        log.seek(0)
        print(log.read()[-6000:])
    engine.terminate()
    engine.wait(timeout=30)
    daemon.terminate()
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
