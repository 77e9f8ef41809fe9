#!/usr/bin/env python3
"""Writes a `git fast-import` stream for the git source benchmark to stdout: a GitOps
repository of 10,000 files and 1,000 commits on `main`.

- keelson.yaml with 50 targets, overlays/tNN/{kustomization,patch}.yaml over a shared base;
- 9,895 other files (data/dNN/fNNNN.yaml), the bulk a real monorepo carries;
- commit 1 adds everything; each of the 999 others edits 5 data files, and every 50th
  also edits one overlay's patch.
"""
import sys

out = sys.stdout.buffer
TARGETS = 50


def data(text):
    b = text.encode()
    out.write(b"data %d\n" % len(b) + b + b"\n")


def overlay(i, replicas):
    return {
        f"overlays/t{i:02d}/kustomization.yaml":
            f"resources:\n- ../../base\nnamePrefix: t{i:02d}-\npatches:\n- path: patch.yaml\n",
        f"overlays/t{i:02d}/patch.yaml":
            f"apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: {replicas}\n",
    }


files = {
    "keelson.yaml": "clusters:\n- name: one\n  labels: {env: dev}\n  kubeconfig: {context: x}\ntargets:\n"
    + "".join(f"- {{name: t{i:02d}, path: overlays/t{i:02d}, clusterSelector: {{env: dev}}}}\n"
              for i in range(TARGETS)),
    "base/kustomization.yaml":
        "resources:\n- deploy.yaml\nconfigMapGenerator:\n- name: cfg\n  files:\n  - app.properties\n",
    "base/deploy.yaml":
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n"
        "    spec:\n      containers:\n      - name: web\n        image: web:1\n",
    "base/app.properties": "level=info\n",
}
for i in range(TARGETS):
    files.update(overlay(i, 1))
n_data = 10_000 - len(files)
for i in range(n_data):
    files[f"data/d{i % 100:02d}/f{i:04d}.yaml"] = f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f{i}\ndata:\n  rev: \"0\"\n"
assert len(files) == 10_000

ts = 1_700_000_000
for c in range(1000):
    if c == 0:
        changed = files
    else:
        changed = {}
        for k in range(5):
            i = (c * 7919 + k * 104729) % n_data
            changed[f"data/d{i % 100:02d}/f{i:04d}.yaml"] = (
                f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: f{i}\ndata:\n  rev: \"{c}\"\n")
        if c % 50 == 0:
            changed.update(overlay(c // 50 % TARGETS, c))
    out.write(b"commit refs/heads/main\n")
    out.write(b"committer Bench <bench@keelson.invalid> %d +0000\n" % (ts + c * 60))
    data(f"commit {c}\n")
    for path, text in sorted(changed.items()):
        out.write(f"M 100644 inline {path}\n".encode())
        data(text)
    out.write(b"\n")
