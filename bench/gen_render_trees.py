#!/usr/bin/env python3
"""Writes the render benchmark's input trees into DIR (default: a temp dir), printing the
root of each tree to build, one per line: NAME PATH.

- generated-5k: ~5,000 objects — a base of Deployments, Services, ServiceAccounts and
  ConfigMap/Secret generators referenced by name, an overlay with namespace, prefix,
  labels, annotations, images, replicas, generator merges, strategic-merge and JSON 6902
  patches selected by label and name regex.
- platform-like: the shape of a large platform install (an operator bundle): 80 CRDs
  with deep schemas, RBAC for each, controllers, webhooks, an overlay that patches them.
- microservices: the shape of a GitOps monorepo's environment: 60 services, each a base
  (Deployment, Service, HPA, ServiceAccount, ConfigMap from files, Secret from literals)
  and a production overlay (suffix, images, replicas, generator merge, patches), all
  gathered by one environment kustomization with a policies component — 122
  kustomizations.
"""
import os, sys, tempfile

out = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="keelson-bench-")

def write(path, text):
    path = os.path.join(out, path)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)

# ---- generated-5k
apps = 720
files = []
for f in range(apps // 20):
    docs = []
    for i in range(f * 20, f * 20 + 20):
        docs.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: app-{i}
  labels:
    app: app-{i}
    tier: {"front" if i % 3 == 0 else "back"}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: app-{i}
  template:
    metadata:
      labels:
        app: app-{i}
    spec:
      serviceAccountName: sa-{i}
      containers:
      - name: main
        image: registry.example.com/team/app-{i % 50}:1.0.{i}
        ports:
        - containerPort: 8080
        env:
        - name: INDEX
          value: "{i}"
        - name: LEVEL
          valueFrom:
            configMapKeyRef:
              name: cfg-{i}
              key: level
        envFrom:
        - secretRef:
            name: sec-{i}
        volumeMounts:
        - name: cfg
          mountPath: /etc/app
      - name: proxy
        image: envoyproxy/envoy:v1.30
      volumes:
      - name: cfg
        configMap:
          name: cfg-{i}
---
apiVersion: v1
kind: Service
metadata:
  name: app-{i}
spec:
  selector:
    app: app-{i}
  ports:
  - port: 80
    targetPort: 8080
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: sa-{i}
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: app-{i}
spec:
  minAvailable: 1
  selector:
    matchLabels:
      app: app-{i}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: app-{i}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: app-{i}
  minReplicas: 1
  maxReplicas: 4
""")
    name = f"apps-{f:03d}.yaml"
    files.append(name)
    write(f"generated-5k/base/{name}", "---\n".join(docs))
gens = "".join(f"- name: cfg-{i}\n  literals:\n  - level=info\n  - index={i}\n" for i in range(apps))
secs = "".join(f"- name: sec-{i}\n  literals:\n  - token=t{i}\n" for i in range(apps))
write("generated-5k/base/kustomization.yaml",
      "resources:\n" + "".join(f"- {n}\n" for n in files) +
      "configMapGenerator:\n" + gens + "secretGenerator:\n" + secs)
merges = "".join(f"- name: cfg-{i}\n  behavior: merge\n  literals:\n  - level=debug\n" for i in range(0, apps, 7))
write("generated-5k/overlay/kustomization.yaml", f"""resources:
- ../base
namespace: bench
namePrefix: prod-
labels:
- pairs:
    env: prod
  includeSelectors: true
commonAnnotations:
  owner: platform
images:
- name: envoyproxy/envoy
  newTag: v1.31
replicas:
- name: app-1
  count: 3
patches:
- target:
    kind: Deployment
    labelSelector: tier=front
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          containers:
          - name: main
            resources:
              limits:
                memory: 512Mi
- target:
    kind: Service
    name: "app-1.*"
  patch: |-
    - op: add
      path: /spec/sessionAffinity
      value: ClientIP
configMapGenerator:
{merges}""")
print("generated-5k", os.path.join(out, "generated-5k/overlay"))

# ---- platform-like
crds, rbac, workloads = [], [], []
for c in range(80):
    props = "".join(f"""                  field{p}:
                    type: object
                    description: "Field {p} of kind {c}; a long description as real CRDs carry, explaining defaults and validation in detail."
                    properties:
                      enabled:
                        type: boolean
                      items:
                        type: array
                        items:
                          type: object
                          properties:
                            name:
                              type: string
                            value:
                              type: string
""" for p in range(25))
    crds.append(f"""apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: things{c}.platform.example.com
spec:
  group: platform.example.com
  names:
    kind: Thing{c}
    plural: things{c}
  scope: Namespaced
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              config:
                type: object
                properties:
{props}""")
    rbac.append(f"""apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: thing{c}-editor
rules:
- apiGroups: [platform.example.com]
  resources: [things{c}]
  verbs: [get, list, watch, create, update, patch, delete]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: thing{c}-editor
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: ClusterRole
  name: thing{c}-editor
subjects:
- kind: ServiceAccount
  name: controller
""")
for w in range(40):
    workloads.append(f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: controller-{w}
spec:
  selector:
    matchLabels:
      app: controller-{w}
  template:
    metadata:
      labels:
        app: controller-{w}
    spec:
      serviceAccountName: controller
      containers:
      - name: manager
        image: quay.io/platform/controller:v2.{w}
        args: ["--leader-elect", "--metrics-bind-address=:8080"]
---
apiVersion: v1
kind: Service
metadata:
  name: controller-{w}
spec:
  selector:
    app: controller-{w}
  ports:
  - port: 443
    targetPort: 9443
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata:
  name: controller-{w}
webhooks:
- name: validate.controller-{w}.platform.example.com
  admissionReviewVersions: [v1]
  sideEffects: None
  clientConfig:
    service:
      name: controller-{w}
      namespace: default
      path: /validate
""")
write("platform-like/base/crds.yaml", "---\n".join(crds))
write("platform-like/base/rbac.yaml", "---\n".join(rbac))
write("platform-like/base/workloads.yaml", "---\n".join(workloads) +
      "---\napiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: controller\n")
write("platform-like/base/kustomization.yaml", "resources:\n- crds.yaml\n- rbac.yaml\n- workloads.yaml\n")
write("platform-like/overlay/kustomization.yaml", """resources:
- ../base
namespace: platform-system
namePrefix: platform-
commonLabels:
  app.kubernetes.io/part-of: platform
images:
- name: quay.io/platform/controller
  newName: mirror.example.com/platform/controller
patches:
- target:
    kind: Deployment
  patch: |-
    apiVersion: apps/v1
    kind: Deployment
    metadata:
      name: any
    spec:
      template:
        spec:
          containers:
          - name: manager
            resources:
              requests:
                cpu: 100m
""")
print("platform-like", os.path.join(out, "platform-like/overlay"))

# ---- microservices
services = 60
write("microservices/components/policies/kustomization.yaml", """apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
- networkpolicy.yaml
labels:
- pairs:
    policy.example.com/baseline: "true"
""")
write("microservices/components/policies/networkpolicy.yaml", """apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: default-deny
spec:
  podSelector: {}
  policyTypes:
  - Ingress
""")
env = []
for i in range(services):
    svc = f"svc-{i:02d}"
    write(f"microservices/services/{svc}/base/kustomization.yaml", f"""resources:
- deployment.yaml
- service.yaml
- hpa.yaml
- serviceaccount.yaml
labels:
- pairs:
    app.kubernetes.io/name: {svc}
  includeSelectors: true
configMapGenerator:
- name: {svc}-config
  files:
  - application.properties
  literals:
  - LOG_LEVEL=info
secretGenerator:
- name: {svc}-credentials
  literals:
  - username={svc}
  - password=not-a-secret-{i}
""")
    write(f"microservices/services/{svc}/base/application.properties",
          "".join(f"{svc}.setting{k}=value-{k}\n" for k in range(20)))
    write(f"microservices/services/{svc}/base/deployment.yaml", f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
spec:
  replicas: 1
  template:
    spec:
      serviceAccountName: {svc}
      containers:
      - name: app
        image: registry.example.com/shop/{svc}:1.0.0
        ports:
        - containerPort: 8080
          name: http
        envFrom:
        - configMapRef:
            name: {svc}-config
        - secretRef:
            name: {svc}-credentials
        readinessProbe:
          httpGet:
            path: /healthz
            port: http
        resources:
          requests:
            cpu: 50m
            memory: 64Mi
        volumeMounts:
        - name: config
          mountPath: /etc/{svc}
      volumes:
      - name: config
        configMap:
          name: {svc}-config
""")
    write(f"microservices/services/{svc}/base/service.yaml", f"""apiVersion: v1
kind: Service
metadata:
  name: {svc}
spec:
  ports:
  - name: http
    port: 80
    targetPort: http
""")
    write(f"microservices/services/{svc}/base/hpa.yaml", f"""apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata:
  name: {svc}
spec:
  scaleTargetRef:
    apiVersion: apps/v1
    kind: Deployment
    name: {svc}
  minReplicas: 1
  maxReplicas: 5
  metrics:
  - type: Resource
    resource:
      name: cpu
      target:
        type: Utilization
        averageUtilization: 70
""")
    write(f"microservices/services/{svc}/base/serviceaccount.yaml", f"""apiVersion: v1
kind: ServiceAccount
metadata:
  name: {svc}
""")
    write(f"microservices/services/{svc}/production/kustomization.yaml", f"""resources:
- ../base
nameSuffix: -prod
images:
- name: registry.example.com/shop/{svc}
  newTag: 1.{i}.3
replicas:
- name: {svc}
  count: 3
configMapGenerator:
- name: {svc}-config
  behavior: merge
  literals:
  - LOG_LEVEL=warn
patches:
- path: resources.yaml
- target:
    kind: HorizontalPodAutoscaler
  patch: |-
    - op: replace
      path: /spec/maxReplicas
      value: 20
""")
    write(f"microservices/services/{svc}/production/resources.yaml", f"""apiVersion: apps/v1
kind: Deployment
metadata:
  name: {svc}
spec:
  template:
    spec:
      containers:
      - name: app
        resources:
          limits:
            memory: 256Mi
""")
    env.append(f"- ../../services/{svc}/production")
write("microservices/environments/production/kustomization.yaml",
      "namespace: shop-production\ncommonAnnotations:\n  example.com/environment: production\n"
      "components:\n- ../../components/policies\nresources:\n" + "\n".join(env) + "\n")
print("microservices", os.path.join(out, "microservices/environments/production"))
