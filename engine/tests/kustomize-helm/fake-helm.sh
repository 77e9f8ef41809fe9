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
# Flags as kustomize passes them (`--namespace NS` after the positionals) or as keelson does
# (`--namespace=NS`, positionals after `--`).
release=; chart=; ns=default; crds=no; positional=no
while [ $# -gt 0 ]; do
  if [ "$positional" = no ]; then
    case "$1" in
    --) positional=yes; shift; continue ;;
    --namespace) ns=$2; shift 2; continue ;;
    --namespace=*) ns=${1#--namespace=}; shift; continue ;;
    --include-crds) crds=yes; shift; continue ;;
    -f) shift 2; continue ;;
    -*) shift; continue ;;
    esac
  fi
  if [ -z "$release" ]; then release=$1; else chart=$(basename "$1"); fi
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
