//! Name references: after prefixes, suffixes, hashes and namespaces changed ids, fields
//! that refer to an object by a name it had before are updated to its current name (and,
//! for `{name, namespace}` references, its namespace) — kustomize's `nameReference`.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use serde_json::{Map, Value};

use super::config::NameRef;
use super::fieldspec::for_each_field;
use super::resource::Resource;
use super::transform::CLUSTER_SCOPED;

/// A field of `referrer` kinds that names a `target` kind.
struct Ref {
    target: String,
    /// The target's API group must be this one (empty: any).
    group: String,
    /// The referring kind (empty: any).
    referrer: String,
    path: String,
}

/// Where each kind keeps the pod spec that ConfigMap/Secret references live in.
const CONFIG_HOLDERS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("PodTemplate", "template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicaSet", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
];

/// Where each kind keeps the pod spec that service accounts, claims and priority classes
/// are named in.
const POD_HOLDERS: &[(&str, &str)] = &[
    ("Pod", "spec"),
    ("StatefulSet", "spec/template/spec"),
    ("Deployment", "spec/template/spec"),
    ("ReplicationController", "spec/template/spec"),
    ("CronJob", "spec/jobTemplate/spec/template/spec"),
    ("Job", "spec/template/spec"),
    ("DaemonSet", "spec/template/spec"),
];

const CONFIG_MAP_FIELDS: &[&str] = &[
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
];

const SECRET_FIELDS: &[&str] = &[
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
];

/// Fields outside pod specs: (target, target group, referrer, path).
const OTHER: &[(&str, &str, &str, &str)] = &[
    (
        "Deployment",
        "",
        "HorizontalPodAutoscaler",
        "spec/scaleTargetRef/name",
    ),
    (
        "ReplicationController",
        "",
        "HorizontalPodAutoscaler",
        "spec/scaleTargetRef/name",
    ),
    (
        "ReplicaSet",
        "",
        "HorizontalPodAutoscaler",
        "spec/scaleTargetRef/name",
    ),
    (
        "StatefulSet",
        "",
        "HorizontalPodAutoscaler",
        "spec/scaleTargetRef/name",
    ),
    ("ConfigMap", "", "Node", "spec/configSource/configMap"),
    ("ConfigMap", "", "Role", "rules/resourceNames"),
    ("ConfigMap", "", "ClusterRole", "rules/resourceNames"),
    (
        "ConfigMap",
        "",
        "Ingress",
        "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
    ),
    ("Secret", "", "Ingress", "spec/tls/secretName"),
    (
        "Secret",
        "",
        "Ingress",
        "metadata/annotations/ingress.kubernetes.io\\/auth-secret",
    ),
    (
        "Secret",
        "",
        "Ingress",
        "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret",
    ),
    (
        "Secret",
        "",
        "Ingress",
        "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret",
    ),
    ("Secret", "", "ServiceAccount", "imagePullSecrets/name"),
    ("Secret", "", "StorageClass", "parameters/secretName"),
    ("Secret", "", "StorageClass", "parameters/adminSecretName"),
    ("Secret", "", "StorageClass", "parameters/userSecretName"),
    ("Secret", "", "StorageClass", "parameters/secretRef"),
    ("Secret", "", "Role", "rules/resourceNames"),
    ("Secret", "", "ClusterRole", "rules/resourceNames"),
    (
        "Secret",
        "",
        "Service",
        "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
    ),
    (
        "Secret",
        "",
        "PersistentVolume",
        "spec/azureFile/secretName",
    ),
    ("Service", "", "StatefulSet", "spec/serviceName"),
    (
        "Service",
        "",
        "Ingress",
        "spec/rules/http/paths/backend/serviceName",
    ),
    ("Service", "", "Ingress", "spec/backend/serviceName"),
    (
        "Service",
        "",
        "Ingress",
        "spec/rules/http/paths/backend/service/name",
    ),
    ("Service", "", "Ingress", "spec/defaultBackend/service/name"),
    ("Service", "", "APIService", "spec/service/name"),
    (
        "Service",
        "",
        "ValidatingWebhookConfiguration",
        "webhooks/clientConfig/service",
    ),
    (
        "Service",
        "",
        "MutatingWebhookConfiguration",
        "webhooks/clientConfig/service",
    ),
    (
        "Role",
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "roleRef/name",
    ),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "RoleBinding",
        "roleRef/name",
    ),
    (
        "ClusterRole",
        "rbac.authorization.k8s.io",
        "ClusterRoleBinding",
        "roleRef/name",
    ),
    ("ServiceAccount", "", "RoleBinding", "subjects"),
    ("ServiceAccount", "", "ClusterRoleBinding", "subjects"),
    (
        "PersistentVolume",
        "",
        "PersistentVolumeClaim",
        "spec/volumeName",
    ),
    ("PersistentVolume", "", "ClusterRole", "rules/resourceNames"),
    (
        "StorageClass",
        "storage.k8s.io",
        "PersistentVolume",
        "spec/storageClassName",
    ),
    (
        "StorageClass",
        "storage.k8s.io",
        "PersistentVolumeClaim",
        "spec/storageClassName",
    ),
    (
        "StorageClass",
        "storage.k8s.io",
        "StatefulSet",
        "spec/volumeClaimTemplates/spec/storageClassName",
    ),
    (
        "ValidatingAdmissionPolicy",
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
        "spec/policyName",
    ),
];

fn refs() -> &'static [Ref] {
    static REFS: OnceLock<Vec<Ref>> = OnceLock::new();
    REFS.get_or_init(|| {
        let mut out = Vec::new();
        let mut pod = |target: &str, holders: &[(&str, &str)], fields: &[&str]| {
            for (referrer, prefix) in holders {
                for field in fields {
                    out.push(Ref {
                        target: target.to_string(),
                        group: String::new(),
                        referrer: referrer.to_string(),
                        path: format!("{prefix}/{field}"),
                    });
                }
            }
        };
        pod("ConfigMap", CONFIG_HOLDERS, CONFIG_MAP_FIELDS);
        pod("Secret", CONFIG_HOLDERS, SECRET_FIELDS);
        pod("ServiceAccount", POD_HOLDERS, &["serviceAccountName"]);
        pod(
            "PersistentVolumeClaim",
            POD_HOLDERS,
            &["volumes/persistentVolumeClaim/claimName"],
        );
        pod("PriorityClass", POD_HOLDERS, &["priorityClassName"]);
        for (target, group, referrer, path) in OTHER {
            out.push(Ref {
                target: target.to_string(),
                group: group.to_string(),
                referrer: referrer.to_string(),
                path: path.to_string(),
            });
        }
        out
    })
}

/// What the candidates of a reference need to be compared with.
struct Candidate {
    kind: String,
    group: String,
    name: String,
    namespace: Option<String>,
    first_namespace: Option<String>,
    previous_names: Vec<String>,
}

impl Candidate {
    fn of(r: &Resource) -> Self {
        Candidate {
            kind: r.kind().to_string(),
            group: r.gvk().group,
            name: r.name().to_string(),
            namespace: r.namespace().map(str::to_string),
            first_namespace: r.first_namespace().map(str::to_string),
            previous_names: r.previous.iter().map(|(n, _)| n.clone()).collect(),
        }
    }

    fn cluster_scoped(&self) -> bool {
        CLUSTER_SCOPED.contains(&self.kind.as_str())
    }
}

/// The namespace an object effectively lives in ("" for cluster-scoped ones).
fn effective_ns(kind: &str, ns: Option<&str>) -> String {
    if CLUSTER_SCOPED.contains(&kind) {
        String::new()
    } else {
        ns.filter(|n| !n.is_empty())
            .unwrap_or("default")
            .to_string()
    }
}

/// Updates every reference to an object whose id changed; `extra` are the name references
/// a tree's `configurations:`/`crds:` added.
pub fn fix(res: &mut [Resource], extra: &[NameRef]) -> Result<(), String> {
    let candidates: Vec<Candidate> = res
        .iter()
        .filter(|r| !r.previous.is_empty())
        .map(Candidate::of)
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    // (kind, a previous name) -> candidates: lookups cost one hash per referring field.
    let mut by_name: HashMap<(&str, &str), Vec<&Candidate>> = HashMap::new();
    for c in &candidates {
        for n in &c.previous_names {
            let entry = by_name.entry((c.kind.as_str(), n.as_str())).or_default();
            if !entry.iter().any(|x| std::ptr::eq(*x, c)) {
                entry.push(c);
            }
        }
    }
    let kinds: HashSet<&str> = candidates.iter().map(|c| c.kind.as_str()).collect();
    let extra_refs: Vec<Ref> = extra
        .iter()
        .flat_map(|nr| {
            nr.referrers.iter().map(|s| Ref {
                target: nr.kind.clone(),
                group: nr.group.clone(),
                referrer: s.kind.clone(),
                path: s.walk_path(),
            })
        })
        .collect();
    let mut failure = None;
    for referrer in res.iter_mut() {
        let kind = referrer.kind().to_string();
        let referrer_ns = effective_ns(&kind, referrer.namespace());
        let referrer_cluster_scoped = CLUSTER_SCOPED.contains(&kind.as_str());
        let role_ref = referrer.obj.get("roleRef").map(|r| {
            (
                r.get("apiGroup")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
                r.get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            )
        });
        for r in refs().iter().chain(&extra_refs).filter(|r| {
            (r.referrer.is_empty() || r.referrer == kind) && kinds.contains(r.target.as_str())
        }) {
            let eligible = |c: &&Candidate| {
                (r.group.is_empty() || c.group == r.group)
                    // roleRef names a Role or a ClusterRole: only that kind may match.
                    && (!r.path.ends_with("roleRef/name")
                        || role_ref.as_ref().is_none_or(|(g, k)| *g == c.group && *k == c.kind))
                    && (referrer_cluster_scoped
                        || c.cluster_scoped()
                        || c.kind == "ServiceAccount"
                        || effective_ns(&c.kind, c.namespace.as_deref()) == referrer_ns)
            };
            let lookup = |old: &str| -> Vec<&Candidate> {
                by_name
                    .get(&(r.target.as_str(), old))
                    .map(|v| v.iter().copied().filter(eligible).collect())
                    .unwrap_or_default()
            };
            for_each_field(&mut referrer.obj, &r.path, &mut |value| {
                if let Err(e) = update(value, &lookup) {
                    failure.get_or_insert(e);
                }
            });
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

fn update<'a>(
    value: &mut Value,
    lookup: &dyn Fn(&str) -> Vec<&'a Candidate>,
) -> Result<(), String> {
    match value {
        Value::String(old) => {
            if let Some(c) = select(old, lookup(old))? {
                *old = c.name.clone();
            }
        }
        Value::Object(m) => update_mapping(m, lookup)?,
        Value::Array(items) => {
            for item in items.iter_mut() {
                match item {
                    Value::String(_) | Value::Object(_) => update(item, lookup)?,
                    _ => {}
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// `{name, namespace}` references: candidates narrow by the namespace given (original
/// namespace first, then current), and both fields are updated.
fn update_mapping<'a>(
    m: &mut Map<String, Value>,
    lookup: &dyn Fn(&str) -> Vec<&'a Candidate>,
) -> Result<(), String> {
    let Some(old) = m.get("name").and_then(Value::as_str).map(str::to_string) else {
        return Ok(());
    };
    let eligible = lookup(&old);
    let pool: Vec<&Candidate> = match m.get("namespace").and_then(Value::as_str) {
        None => eligible,
        Some(ns) => {
            let by_first: Vec<&Candidate> = eligible
                .iter()
                .copied()
                .filter(|c| effective_ns(&c.kind, c.first_namespace.as_deref()) == ns)
                .collect();
            if by_first.is_empty() {
                eligible
                    .into_iter()
                    .filter(|c| effective_ns(&c.kind, c.namespace.as_deref()) == ns)
                    .collect()
            } else {
                by_first
            }
        }
    };
    let Some(c) = select(&old, pool)? else {
        return Ok(());
    };
    if c.name == old && c.namespace.is_none() {
        return Ok(());
    }
    m.insert("name".into(), Value::String(c.name.clone()));
    if let Some(ns) = &c.namespace {
        m.insert("namespace".into(), Value::String(ns.clone()));
    }
    Ok(())
}

/// The one candidate (already known to have been called `old`), if any.
fn select<'a>(old: &str, matching: Vec<&'a Candidate>) -> Result<Option<&'a Candidate>, String> {
    match matching.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one)),
        [first, rest @ ..] if rest.iter().all(|c| c.name == first.name) => Ok(Some(first)),
        many => Err(format!(
            "found multiple possible referrals for {old:?}: {}",
            many.iter()
                .map(|c| format!("{}/{}", c.kind, c.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
