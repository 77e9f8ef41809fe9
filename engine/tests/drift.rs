//! Drift, as `keelson diff` and `keelson sync` (the real binary) meet it on two real
//! clusters: someone else's edit is taken over and named (or refused, with `conflicts:
//! fail`), objects opt out with annotations, and `ignoreDifferences` leaves an HPA-like
//! manager its field.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::process::Command;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use keelson_e2e::{ControlPlane, unique};
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;

/// A repository directory with one target `<id>` on both clusters.
struct Repo {
    dir: tempfile::TempDir,
    id: String,
}

impl Repo {
    fn new(prefix: &str, sync: &str) -> Self {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            id: unique(prefix),
        };
        repo.config(sync);
        repo
    }

    /// keelson.yaml, with `sync` as the target's sync policy (a YAML flow mapping body).
    fn config(&self, sync: &str) {
        let kubeconfig = ControlPlane::shared().kubeconfig().display().to_string();
        let text = format!(
            "clusters:\n\
             - name: one\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-1, path: {kubeconfig}}}\n\
             - name: two\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-2, path: {kubeconfig}}}\n\
             targets:\n\
             - name: {id}\n  path: app\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{{sync}}}\n",
            id = self.id
        );
        std::fs::write(self.dir.path().join("keelson.yaml"), text).unwrap();
    }

    /// The overlay: the target's Namespace and `docs` (YAML documents) in it.
    fn overlay(&self, docs: &[String]) {
        let dir = self.dir.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        let mut all = vec![format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            self.id
        )];
        all.extend(docs.iter().cloned());
        std::fs::write(dir.join("objects.yaml"), all.join("---\n")).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!("namespace: {}\nresources:\n- objects.yaml\n", self.id),
        )
        .unwrap();
    }

    /// Runs `keelson VERB <dir> ARGS…`: (exit code, stdout, stderr).
    fn keelson(&self, verb: &str, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_keelson"))
            .arg(verb)
            .arg(self.dir.path())
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn client(rt: &tokio::runtime::Runtime, context: &str) -> kube::Client {
    rt.block_on(ControlPlane::shared().cluster(context).unwrap().client())
        .unwrap()
}

fn config_map(name: &str, annotations: &str, data: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations: {{{annotations}}}\ndata: {{{data}}}\n"
    )
}

fn data(
    rt: &tokio::runtime::Runtime,
    api: &Api<ConfigMap>,
    name: &str,
    key: &str,
) -> Option<String> {
    rt.block_on(api.get_opt(name))
        .unwrap()
        .and_then(|c| c.data?.get(key).cloned())
}

/// `kubectl patch --field-manager intruder`: a merge patch, an update by another manager.
fn intrude(rt: &tokio::runtime::Runtime, api: &Api<ConfigMap>, name: &str, key: &str, value: &str) {
    let params = PatchParams {
        field_manager: Some("intruder".into()),
        ..PatchParams::default()
    };
    rt.block_on(api.patch(name, &params, &Patch::Merge(json!({"data": {key: value}}))))
        .unwrap();
}

#[test]
fn someone_elses_edit_is_taken_over_and_named_unless_the_target_says_fail() {
    let rt = runtime();
    let repo = Repo::new("drift", "");
    repo.overlay(&[config_map("policy", "", "allowedRegistries: ghcr.io")]);
    assert_eq!(repo.keelson("sync", &[]).0, 0);
    let api: Api<ConfigMap> = Api::namespaced(client(&rt, "e2e-1"), &repo.id);
    intrude(&rt, &api, "policy", "allowedRegistries", "evil.example");

    let (code, out, err) = repo.keelson("diff", &[]);
    assert_eq!(code, 1, "drift is a difference, not an error: {out}{err}");
    let takeover = "`.data.allowedRegistries` owned by `intruder`, taken over";
    assert!(
        out.contains(&format!(
            "  update ConfigMap/{}/policy: .data.allowedRegistries; {takeover}",
            repo.id
        )),
        "{out}"
    );
    // Who owns what, for the rare need: the intruder's entry leaves with the takeover.
    let (code, owners, _) = repo.keelson("diff", &["--show-managed-fields"]);
    assert_eq!(code, 1);
    assert!(
        owners.contains("-  - manager: intruder") || owners.contains("-    manager: intruder"),
        "{owners}"
    );
    assert!(!out.contains("managedFields"), "hidden by default: {out}");
    let (code, json, _) = repo.keelson("diff", &["-o", "json"]);
    assert_eq!(code, 1);
    let plans: serde_json::Value = serde_json::from_str(&json).unwrap();
    let one = plans
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["cluster"] == "one")
        .unwrap();
    let change = one["ok"]["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "policy")
        .unwrap();
    assert_eq!(change["fields"], json!([".data.allowedRegistries"]));
    assert_eq!(
        change["takeovers"],
        json!([{"field": ".data.allowedRegistries", "manager": "intruder"}])
    );

    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains(&format!(
            "took over ConfigMap/{}/policy: {takeover}",
            repo.id
        )),
        "{out}"
    );
    assert_eq!(
        data(&rt, &api, "policy", "allowedRegistries").as_deref(),
        Some("ghcr.io")
    );
    assert_eq!(repo.keelson("diff", &[]).0, 0, "nothing left to take over");

    // A team that wants a person to decide.
    repo.config("conflicts: fail");
    intrude(&rt, &api, "policy", "allowedRegistries", "evil.example");
    let (code, _, err) = repo.keelson("diff", &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("conflict with \"intruder\"") && err.contains(".data.allowedRegistries"),
        "{err}"
    );
    let (code, _, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains("nothing applied") && err.contains("intruder"),
        "{err}"
    );
    assert_eq!(
        data(&rt, &api, "policy", "allowedRegistries").as_deref(),
        Some("evil.example")
    );
}

#[test]
fn annotations_keep_an_object_from_updates_from_the_cluster_or_from_pruning() {
    let rt = runtime();
    let repo = Repo::new("optout", "");
    let seed = config_map("seed", "keelson.dev/ssa: IfNotPresent", "v: '1'");
    let never = config_map("never", "keelson.dev/ssa: Ignore", "v: '1'");
    let kept = config_map("kept", "keelson.dev/prune: disabled", "v: '1'");
    let plain = config_map("plain", "", "v: '1'");
    repo.overlay(&[seed.clone(), never.clone(), kept, plain]);
    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let api: Api<ConfigMap> = Api::namespaced(client(&rt, "e2e-1"), &repo.id);
    assert_eq!(
        data(&rt, &api, "seed", "v").as_deref(),
        Some("1"),
        "IfNotPresent creates"
    );
    assert_eq!(data(&rt, &api, "never", "v"), None, "Ignore never applies");

    // The seed is changed in the cluster and in Git: neither reaches it again.
    intrude(&rt, &api, "seed", "v", "tuned");
    repo.overlay(&[
        seed.replace("v: '1'", "v: '2'"),
        never,
        config_map("plain", "", "v: '1'"),
    ]);
    let (code, out, err) = repo.keelson("diff", &[]);
    assert_eq!(code, 0, "only the kept object left the render: {out}{err}");
    assert!(
        out.contains(&format!(
            "  keep ConfigMap/{}/kept (keelson.dev/prune: disabled)",
            repo.id
        )),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "unchanged ConfigMap/{}/seed (keelson.dev/ssa: IfNotPresent, and it exists)",
            repo.id
        )),
        "{out}"
    );
    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(data(&rt, &api, "seed", "v").as_deref(), Some("tuned"));
    assert_eq!(
        data(&rt, &api, "kept", "v").as_deref(),
        Some("1"),
        "not pruned"
    );
    // An unknown value is a mistake named with its object, and nothing is applied.
    repo.overlay(&[config_map("odd", "keelson.dev/ssa: Sometimes", "v: '1'")]);
    let (code, _, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!(
            "ConfigMap/{}/odd: annotation keelson.dev/ssa: \"Sometimes\"",
            repo.id
        )),
        "{err}"
    );
    assert_eq!(
        data(&rt, &api, "plain", "v").as_deref(),
        Some("1"),
        "nothing pruned"
    );
}

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 2\n  \
         selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
         spec: {{containers: [{{name: web, image: \"{image}\"}}]}}\n"
    )
}

/// An HPA stand-in: scales through the scale subresource as manager `hpa`.
fn scale(rt: &tokio::runtime::Runtime, api: &Api<Deployment>, replicas: i32) {
    let params = PatchParams {
        field_manager: Some("hpa".into()),
        ..PatchParams::default()
    };
    rt.block_on(api.patch_scale(
        "web",
        &params,
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    ))
    .unwrap();
}

fn replicas_and_image(rt: &tokio::runtime::Runtime, api: &Api<Deployment>) -> (i64, String) {
    let d = serde_json::to_value(rt.block_on(api.get("web")).unwrap()).unwrap();
    (
        d.pointer("/spec/replicas")
            .and_then(serde_json::Value::as_i64)
            .unwrap(),
        d.pointer("/spec/template/spec/containers/0/image")
            .and_then(serde_json::Value::as_str)
            .unwrap()
            .to_string(),
    )
}

#[test]
fn ignored_replicas_stay_with_their_scaler_while_every_other_field_follows_git() {
    let rt = runtime();
    for rule in [
        "ignoreDifferences: [{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}]",
        "ignoreDifferences: [{kind: Deployment, name: web, managedFieldsManagers: [hpa]}]",
    ] {
        let repo = Repo::new("hpa", rule);
        repo.overlay(&[deployment("web:1")]);
        assert_eq!(repo.keelson("sync", &[]).0, 0);
        let api: Api<Deployment> = Api::namespaced(client(&rt, "e2e-1"), &repo.id);
        assert_eq!(replicas_and_image(&rt, &api), (2, "web:1".into()));
        scale(&rt, &api, 5);
        let (code, out, err) = repo.keelson("diff", &[]);
        assert_eq!(code, 0, "{rule}: replicas are not drift: {out}{err}");
        // Git changes the image: it is applied, the replicas stay.
        repo.overlay(&[deployment("web:2")]);
        let (code, out, _) = repo.keelson("diff", &[]);
        assert_eq!(code, 1);
        assert!(
            out.contains(".spec.template.spec.containers[name=\"web\"].image"),
            "{out}"
        );
        assert!(!out.contains("-  replicas: 5"), "{out}");
        let (code, out, err) = repo.keelson("sync", &[]);
        assert_eq!(code, 0, "{out}{err}");
        assert_eq!(replicas_and_image(&rt, &api), (5, "web:2".into()), "{rule}");
        // Another hand edit is still taken back.
        let params = PatchParams {
            field_manager: Some("intruder".into()),
            ..PatchParams::default()
        };
        let edit = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil:1"}]}}}});
        rt.block_on(api.patch("web", &params, &Patch::Strategic(edit)))
            .unwrap();
        assert_eq!(repo.keelson("sync", &[]).0, 0);
        assert_eq!(replicas_and_image(&rt, &api), (5, "web:2".into()), "{rule}");
    }
}

/// keelson.yaml with one target per `(name, sync)`, each rendering `dir/<name>`: its
/// Namespace and a ConfigMap.
fn targets(repo: &Repo, targets: &[(&str, &str)]) {
    let kubeconfig = ControlPlane::shared().kubeconfig().display().to_string();
    let mut text = format!(
        "clusters:\n\
         - name: one\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-1, path: {kubeconfig}}}\n\
         targets:\n"
    );
    for (name, sync) in targets {
        let t = format!("{}-{name}", repo.id);
        text.push_str(&format!(
            "- name: {t}\n  path: {name}\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{{sync}}}\n"
        ));
        let dir = repo.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let docs = [
            format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {t}\n"),
            config_map("cm", "", "v: '1'"),
        ];
        std::fs::write(dir.join("objects.yaml"), docs.join("---\n")).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!("namespace: {t}\nresources:\n- objects.yaml\n"),
        )
        .unwrap();
    }
    std::fs::write(repo.path().join("keelson.yaml"), text).unwrap();
}

#[test]
fn a_target_that_leaves_keelson_yaml_is_pruned_or_orphaned_as_its_policy_says() {
    let rt = runtime();
    let repo = Repo::new("removal", "");
    // A work tree whose origin names the repository: its syncs are recorded under it.
    for args in [
        &["init", "-q"][..],
        &[
            "remote",
            "add",
            "origin",
            "https://git.example/team/deploy.git",
        ],
    ] {
        assert!(
            Command::new("git")
                .arg("-C")
                .arg(repo.path())
                .args(args)
                .status()
                .unwrap()
                .success()
        );
    }
    let all = [
        ("stays", ""),
        ("pruned", "onRemoval: prune, pruneGuardPercent: 100"),
        ("guarded", "onRemoval: prune, pruneGuardPercent: 40"),
        ("orphaned", ""),
    ];
    targets(&repo, &all);
    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    let c = client(&rt, "e2e-1");
    let cm = |t: &str| {
        let api: Api<ConfigMap> = Api::namespaced(c.clone(), &format!("{}-{t}", repo.id));
        data(&rt, &api, "cm", "v")
    };
    // A parent names its target; keyed by the work tree's origin, its name has more.
    let parent = |t: &str| {
        let api: Api<k8s_openapi::api::core::v1::Secret> =
            Api::namespaced(c.clone(), "keelson-system");
        let target = format!("{}-{t}", repo.id);
        rt.block_on(api.list(&Default::default()))
            .unwrap()
            .items
            .iter()
            .any(|s| {
                s.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get("keelson.dev/target"))
                    == Some(&target)
                    && s.metadata.name.as_deref() != Some(format!("keelson-{target}").as_str())
            })
    };
    targets(&repo, &all[..1]);

    let (code, out, err) = repo.keelson("diff", &[]);
    assert_eq!(code, 1, "{out}{err}");
    let id = &repo.id;
    for line in [
        format!("target {id}-pruned left keelson.yaml (onRemoval: prune), cluster one:"),
        format!("  prune ConfigMap/{id}-pruned/cm"),
        format!(
            "  keep Namespace/{id}-pruned (Namespace is not pruned without sync.pruneNamespaces)"
        ),
        format!("target {id}-orphaned left keelson.yaml (onRemoval: orphan), cluster one:"),
        format!(
            "  keep ConfigMap/{id}-orphaned/cm (the target left keelson.yaml; onRemoval: orphan)"
        ),
    ] {
        assert!(out.contains(&line), "{line:?} missing in:\n{out}");
    }

    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 1, "the guarded removal is refused: {out}{err}");
    assert!(
        err.contains(&format!(
            "target {id}-guarded left keelson.yaml with onRemoval: prune, but 1 of 2 inventory \
             objects (50 %) would be deleted, over the 40 % guard"
        )),
        "{err}"
    );
    assert!(err.contains("--force-prune"), "{err}");
    assert_eq!((cm("pruned"), parent("pruned")), (None, false));
    assert_eq!(
        (cm("orphaned").as_deref(), parent("orphaned")),
        (Some("1"), false)
    );
    assert_eq!(
        (cm("guarded").as_deref(), parent("guarded")),
        (Some("1"), true)
    );
    assert_eq!((cm("stays").as_deref(), parent("stays")), (Some("1"), true));

    let (code, out, err) = repo.keelson("sync", &["--force-prune"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!((cm("guarded"), parent("guarded")), (None, false));
    assert_eq!(repo.keelson("diff", &[]).0, 0, "nothing left to remove");
}

#[test]
fn objects_applied_under_the_old_shared_field_manager_move_to_their_targets_own() {
    let rt = runtime();
    let repo = Repo::new("manager", "conflicts: fail");
    repo.overlay(&[config_map("cm", "", "k: '1'")]);
    assert_eq!(repo.keelson("sync", &[]).0, 0);
    let api: Api<ConfigMap> = Api::namespaced(client(&rt, "e2e-1"), &repo.id);
    // As an older keelson left it: applied by the manager every target shared, with a
    // key this render no longer declares.
    let target = &repo.id;
    let part_of = rt
        .block_on(api.get("cm"))
        .unwrap()
        .metadata
        .labels
        .unwrap()["applyset.kubernetes.io/part-of"]
        .clone();
    rt.block_on(api.delete("cm", &Default::default())).unwrap();
    let old = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "cm", "labels": {"applyset.kubernetes.io/part-of": part_of}},
        "data": {"k": "1", "gone": "x"}});
    rt.block_on(api.patch("cm", &PatchParams::apply("keelson"), &Patch::Apply(&old)))
        .unwrap();
    let managers = |rt: &tokio::runtime::Runtime| -> Vec<String> {
        rt.block_on(api.get("cm"))
            .unwrap()
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manager)
            .collect()
    };
    assert_eq!(managers(&rt), ["keelson"]);
    // Not a conflict, even with `conflicts: fail`: the old manager was this target.
    let (code, out, err) = repo.keelson("diff", &[]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(!out.contains("taken over"), "{out}");
    let (code, out, err) = repo.keelson("sync", &[]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(managers(&rt), [format!("keelson-{target}")]);
    let data = rt.block_on(api.get("cm")).unwrap().data.unwrap();
    assert_eq!(
        data.get("gone"),
        None,
        "what the render no longer declares goes"
    );
    assert_eq!(repo.keelson("diff", &[]).0, 0);
}
