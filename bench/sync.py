#!/usr/bin/env python3
"""Diff/sync benchmark: keelson vs kubectl (server-side) on the same local clusters in one
run. 1,000 objects of mixed kinds on 3 clusters: first apply, no-op re-apply, a 10 %
change; and the diff before each re-apply. kubectl works one cluster per process, so it
gets one process per cluster, in parallel.
Usage: bench/sync.py KEELSON KUBECTL KUBECONFIG [RUNS]"""
import json, os, statistics, subprocess, sys, tempfile, time

keelson, kubectl, kubeconfig = sys.argv[1], sys.argv[2], sys.argv[3]
runs = int(sys.argv[4]) if len(sys.argv) > 4 else 3
contexts = ["e2e-1", "e2e-2", "e2e-3"]
env = dict(os.environ, KUBECONFIG=kubeconfig, KUBECTL_APPLYSET="true")

def objects(version):
    docs = []
    def cm(i):
        v = version if i < 100 else 0  # the 10 % change touches the first 100 ConfigMaps
        return f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-{i}\ndata:\n  index: \"{i}\"\n  version: \"{v}\"\n"
    docs += [cm(i) for i in range(400)]
    docs += [f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s-{i}\nstringData:\n  token: t{i}\n" for i in range(150)]
    docs += [f"apiVersion: v1\nkind: Service\nmetadata:\n  name: svc-{i}\nspec:\n  selector: {{app: a{i}}}\n  ports:\n  - port: 80\n    targetPort: 8080\n" for i in range(150)]
    docs += [f"apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: sa-{i}\n" for i in range(100)]
    docs += [f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: d-{i}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: a{i}}}
  template:
    metadata:
      labels: {{app: a{i}}}
    spec:
      serviceAccountName: sa-{i}
      containers:
      - name: main
        image: registry.example.com/app:{i}
        envFrom:
        - configMapRef: {{name: cm-{i}}}
""" for i in range(100)]
    docs += [f"apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r-{i}\nrules:\n- apiGroups: [\"\"]\n  resources: [configmaps]\n  verbs: [get]\n" for i in range(50)]
    docs += [f"apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata:\n  name: rb-{i}\nroleRef:\n  apiGroup: rbac.authorization.k8s.io\n  kind: Role\n  name: r-{i}\nsubjects:\n- kind: ServiceAccount\n  name: sa-{i}\n" for i in range(50)]
    return "---\n".join(docs)

def timed(cmds):
    """Runs commands in parallel; returns wall seconds. Exit codes 0 and 1 (diff) are fine."""
    start = time.perf_counter()
    procs = [subprocess.Popen(c, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for c in cmds]
    for p, c in zip(procs, cmds):
        _, err = p.communicate()
        if p.returncode not in (0, 1):
            raise SystemExit(f"{' '.join(c[:3])} failed ({p.returncode}): {err.decode()[-2000:]}")
    return time.perf_counter() - start

results = {}
def record(step, tool, seconds):
    results.setdefault((step, tool), []).append(seconds)

for run in range(runs):
    work = tempfile.mkdtemp(prefix="keelson-sync-bench-")
    kns, cns = f"bench-k-{os.getpid()}-{run}", f"bench-c-{os.getpid()}-{run}"
    for ctx in contexts:  # namespaces exist before either tool runs (not timed)
        for ns in (kns, cns):
            subprocess.run([kubectl, "--context", ctx, "create", "namespace", ns], env=env, check=True, stdout=subprocess.DEVNULL)
    repo = os.path.join(work, "repo")
    os.makedirs(os.path.join(repo, "app"))
    clusters = "".join(f"- name: c{i}\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: {ctx}, path: {kubeconfig}}}\n" for i, ctx in enumerate(contexts))
    open(os.path.join(repo, "keelson.yaml"), "w").write(
        f"clusters:\n{clusters}targets:\n- name: {kns}\n  path: app\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{prune: true}}\n")
    open(os.path.join(repo, "app/kustomization.yaml"), "w").write(f"namespace: {kns}\nresources:\n- objects.yaml\n")
    plain = os.path.join(work, "plain.yaml")

    def write(version):
        text = objects(version)
        open(os.path.join(repo, "app/objects.yaml"), "w").write(text)
        open(plain, "w").write(text)

    kubectl_apply = [[kubectl, "--context", ctx, "apply", "--server-side", "--field-manager", "kubectl-bench",
                      "--prune", f"--applyset=secret/bench", "-n", cns, "-f", plain] for ctx in contexts]
    kubectl_diff = [[kubectl, "--context", ctx, "diff", "--server-side", "--field-manager", "kubectl-bench",
                     "-n", cns, "-f", plain] for ctx in contexts]
    keelson_sync = [[keelson, "sync", repo]]
    keelson_diff = [[keelson, "diff", repo]]

    write(1)
    record("first apply", "keelson", timed(keelson_sync))
    record("first apply", "kubectl", timed(kubectl_apply))
    record("diff, nothing changed", "keelson", timed(keelson_diff))
    record("diff, nothing changed", "kubectl", timed(kubectl_diff))
    record("no-op re-apply", "keelson", timed(keelson_sync))
    record("no-op re-apply", "kubectl", timed(kubectl_apply))
    write(2)
    record("diff, 10 % changed", "keelson", timed(keelson_diff))
    record("diff, 10 % changed", "kubectl", timed(kubectl_diff))
    record("10 % change", "keelson", timed(keelson_sync))
    record("10 % change", "kubectl", timed(kubectl_apply))

print(f"1,000 objects x 3 clusters, median of {runs} runs (wall seconds)")
print(f"{'step':<24}{'keelson':>10}{'kubectl':>10}{'ratio':>9}")
for step in ["first apply", "diff, nothing changed", "no-op re-apply", "diff, 10 % changed", "10 % change"]:
    k = statistics.median(results[(step, "keelson")])
    c = statistics.median(results[(step, "kubectl")])
    print(f"{step:<24}{k:>10.2f}{c:>10.2f}{c/k:>8.1f}x")
