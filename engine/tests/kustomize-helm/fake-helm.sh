#!/bin/sh
# A stand-in for helm with a fixed answer: `version`, and a fixed manifest for
# `template RELEASE CHART [--namespace NS] …`, so that kustomize --enable-helm and keelson
# are compared on how they call helm and what they do with its output. It renders nothing
# from the chart itself (the real helm renders the same cases in kustomize_diff.rs).
case "$1" in
version) echo "v3.16.2+g13654a5"; exit 0 ;;
template) ;;
*) echo "fake helm: unexpected command: $*" >&2; exit 1 ;;
esac
shift
release=$1; chart=$(basename "$2"); shift 2
ns=default; crds=no
while [ $# -gt 0 ]; do
  case "$1" in
  --namespace) ns=$2; shift ;;
  --include-crds) crds=yes ;;
  esac
  shift
done
cat <<YAML
---
# Source: $chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata:
  name: $release-$chart
  namespace: $ns
data:
  chart: $chart
  crds: "$crds"
---
# Source: $chart/templates/svc.yaml
apiVersion: v1
kind: Service
metadata:
  name: $release-$chart
spec:
  ports:
  - port: 80
YAML
