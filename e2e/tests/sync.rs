//! keelson diff and sync against two real clusters: creation, no-op re-plans, updates,
//! drift, pruning and its guard, conflicts, CRDs, invalid objects, a cluster that is down,
//! and Secret values that never show.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use keelson::config::Project;
use keelson::plan::{Action, Plan};
use keelson::sync::{self, Outcome, OutcomeResult, Overrides, Selection};
use keelson_e2e::ControlPlane;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;

use keelson_e2e::unique;

/// A GitOps repository on disk: one target `name` on both clusters (plus an unreachable
/// cluster when `with_down` is set), with namespace `ns`.
struct Repo {
    dir: tempfile::TempDir,
    target: String,
    ns: String,
}

impl Repo {
    fn new(prefix: &str) -> Self {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
            target: unique(prefix),
            ns: unique(prefix),
        };
        repo.config("", "");
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes keelson.yaml; `extra_clusters` and `sync` are YAML fragments.
    fn config(&self, extra_clusters: &str, sync: &str) {
        let kubeconfig = ControlPlane::shared().kubeconfig().display().to_string();
        let text = format!(
            "clusters:\n\
             - name: one\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-1, path: {kubeconfig}}}\n\
             - name: two\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-2, path: {kubeconfig}}}\n\
             {extra_clusters}\
             targets:\n\
             - name: {}\n  path: app\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{prune: true{sync}}}\n",
            self.target
        );
        std::fs::write(self.path().join("keelson.yaml"), text).unwrap();
    }

    /// Writes the overlay: a namespace and these objects (YAML documents).
    fn overlay(&self, docs: &[String]) {
        let dir = self.path().join("app");
        std::fs::create_dir_all(&dir).unwrap();
        let mut all = vec![format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {}\n",
            self.ns
        )];
        all.extend(docs.iter().cloned());
        std::fs::write(dir.join("objects.yaml"), all.join("---\n")).unwrap();
        std::fs::write(
            dir.join("kustomization.yaml"),
            format!("namespace: {}\nresources:\n- objects.yaml\n", self.ns),
        )
        .unwrap();
    }

    fn project(&self) -> Project {
        Project::load(self.path()).unwrap()
    }

    async fn diff(&self) -> Vec<Outcome<Plan>> {
        sync::diff(self.path(), &self.project(), &Selection::default())
            .await
            .unwrap()
    }

    async fn sync(&self) -> Vec<Outcome<keelson::apply::Report>> {
        self.sync_with(Overrides::default()).await
    }

    async fn sync_with(&self, o: Overrides) -> Vec<Outcome<keelson::apply::Report>> {
        sync::sync(self.path(), &self.project(), &Selection::default(), &o)
            .await
            .unwrap()
    }
}

fn config_map(name: &str, data: &[(&str, &str)]) -> String {
    let mut s = format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n");
    for (k, v) in data {
        s.push_str(&format!("  {k}: \"{v}\"\n"));
    }
    s
}

fn ok<T: std::fmt::Debug>(o: &Outcome<T>) -> &T {
    match &o.result {
        OutcomeResult::Ok(v) => v,
        OutcomeResult::Error(e) => panic!("{} on {}: {e}", o.target, o.cluster),
    }
}

fn err<T>(o: &Outcome<T>) -> String {
    match &o.result {
        OutcomeResult::Ok(_) => panic!("{} on {} should have failed", o.target, o.cluster),
        OutcomeResult::Error(e) => e.to_string(),
    }
}

async fn clients() -> Vec<kube::Client> {
    let mut out = Vec::new();
    for c in ControlPlane::shared().clusters() {
        out.push(c.client().await.unwrap());
    }
    out
}

#[tokio::test]
async fn first_sync_creates_then_nothing_changes_then_only_the_edit_updates() {
    let repo = Repo::new("life");
    repo.overlay(&[
        config_map("a", &[("k", "1")]),
        config_map("b", &[("k", "1")]),
    ]);
    for o in repo.diff().await {
        let p = ok(&o);
        assert_eq!((p.count(Action::Create), p.errors.len()), (3, 0), "{p:#?}");
    }
    for o in repo.sync().await {
        assert_eq!(ok(&o).applied.len(), 3);
    }
    for o in repo.diff().await {
        let p = ok(&o);
        assert!(!p.has_changes(), "second diff must be empty: {p:#?}");
        assert_eq!(p.count(Action::Unchanged), 3);
    }
    // Change one object: only it updates.
    repo.overlay(&[
        config_map("a", &[("k", "2")]),
        config_map("b", &[("k", "1")]),
    ]);
    for o in repo.diff().await {
        let p = ok(&o);
        let updated: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::Update)
            .collect();
        assert_eq!(updated.len(), 1);
        assert_eq!(updated[0].name, "a");
        assert!(
            updated[0].diff.contains("-  k: \"1\"") && updated[0].diff.contains("+  k: \"2\""),
            "{}",
            updated[0].diff
        );
    }
    repo.sync().await;
    for client in clients().await {
        let cm = Api::<ConfigMap>::namespaced(client, &repo.ns)
            .get("a")
            .await
            .unwrap();
        assert_eq!(cm.data.unwrap()["k"], "2");
    }
}

#[tokio::test]
async fn drift_is_reported_and_the_next_sync_restores_it() {
    let repo = Repo::new("drift");
    repo.overlay(&[config_map("a", &[("k", "1")])]);
    repo.sync().await;
    let client = clients().await.remove(0);
    let api = Api::<ConfigMap>::namespaced(client, &repo.ns);
    // Someone edits the live object with kubectl (its own field manager, forced).
    let edit = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "hacked"}});
    api.patch(
        "a",
        &PatchParams::apply("kubectl").force(),
        &Patch::Apply(&edit),
    )
    .await
    .unwrap();
    let plans = repo.diff().await;
    let drifted = plans.iter().find(|o| o.cluster == "one").unwrap();
    let change = ok(drifted)
        .changes
        .iter()
        .find(|c| c.name == "a")
        .unwrap_or_else(|| panic!("{:#?}", ok(drifted)));
    assert_eq!(change.action, Action::Update);
    assert!(change.diff.contains("-  k: hacked"), "{}", change.diff);
    assert_eq!(change.fields, [".data.k"]);
    assert_eq!(
        (
            change.takeovers[0].field.as_str(),
            change.takeovers[0].manager.as_str()
        ),
        (".data.k", "kubectl")
    );
    // The other cluster has no drift.
    assert!(!ok(plans.iter().find(|o| o.cluster == "two").unwrap()).has_changes());
    // Git wins: the sync takes the field back and says from whom.
    for o in repo.sync().await {
        let report = ok(&o);
        if o.cluster == "one" {
            assert_eq!(
                report.takeovers(),
                [format!(
                    "ConfigMap/{}/a: `.data.k` owned by `kubectl`, taken over",
                    repo.ns
                )]
            );
        }
    }
    assert_eq!(api.get("a").await.unwrap().data.unwrap()["k"], "1");
}

#[tokio::test]
async fn pruning_removes_only_our_objects_everywhere() {
    let repo = Repo::new("prune");
    repo.overlay(&[
        config_map("keep", &[("k", "1")]),
        config_map("gone", &[("k", "1")]),
        config_map("x1", &[]),
        config_map("x2", &[]),
    ]);
    repo.sync().await;
    // An unlabelled object of the same name in another namespace must survive.
    let clients = clients().await;
    let other = unique("other");
    for c in &clients {
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": other}})).unwrap();
        Api::<Namespace>::all(c.clone())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "gone"}})).unwrap();
        Api::<ConfigMap>::namespaced(c.clone(), &other)
            .create(&PostParams::default(), &cm)
            .await
            .unwrap();
    }
    repo.overlay(&[
        config_map("keep", &[("k", "1")]),
        config_map("x1", &[]),
        config_map("x2", &[]),
    ]);
    for o in repo.diff().await {
        let p = ok(&o);
        let pruned: Vec<_> = p
            .changes
            .iter()
            .filter(|c| c.action == Action::Prune)
            .map(|c| c.name.as_str())
            .collect();
        assert_eq!(pruned, ["gone"]);
    }
    for o in repo.sync().await {
        assert_eq!(ok(&o).pruned, [format!("ConfigMap/{}/gone", repo.ns)]);
    }
    for c in &clients {
        assert!(
            Api::<ConfigMap>::namespaced(c.clone(), &repo.ns)
                .get_opt("gone")
                .await
                .unwrap()
                .is_none()
        );
        assert!(
            Api::<ConfigMap>::namespaced(c.clone(), &other)
                .get_opt("gone")
                .await
                .unwrap()
                .is_some()
        );
        assert!(
            Api::<ConfigMap>::namespaced(c.clone(), &repo.ns)
                .get_opt("keep")
                .await
                .unwrap()
                .is_some()
        );
    }
}

#[tokio::test]
async fn an_empty_render_and_a_large_prune_are_refused() {
    let repo = Repo::new("guard");
    repo.overlay(&[
        config_map("a", &[]),
        config_map("b", &[]),
        config_map("c", &[]),
    ]);
    repo.sync().await;
    // Dropping 3 of 4 inventory members (75 %) is over the default 50 % guard.
    repo.overlay(&[]);
    for o in repo.sync().await {
        assert!(err(&o).contains("prune refused"), "{}", err(&o));
    }
    // An empty render (not even the namespace) is always refused.
    std::fs::write(
        repo.path().join("app/kustomization.yaml"),
        "resources: []\n",
    )
    .unwrap();
    for o in repo.sync().await {
        assert!(err(&o).contains("render is empty"), "{}", err(&o));
    }
    for c in clients().await {
        assert!(
            Api::<ConfigMap>::namespaced(c, &repo.ns)
                .get_opt("a")
                .await
                .unwrap()
                .is_some(),
            "nothing pruned"
        );
    }
    // Forced, the prune goes through.
    repo.overlay(&[]);
    let forced = repo
        .sync_with(Overrides {
            force_prune: true,
            ..Overrides::default()
        })
        .await;
    for o in forced {
        assert_eq!(ok(&o).pruned.len(), 3);
    }
}

#[tokio::test]
async fn with_conflicts_fail_a_conflict_names_the_other_manager_and_applies_nothing() {
    let repo = Repo::new("conflict");
    repo.config("", ", conflicts: fail");
    repo.overlay(&[config_map("shared", &[("owner", "keelson")])]);
    repo.sync().await;
    let client = clients().await.remove(0);
    let api = Api::<ConfigMap>::namespaced(client, &repo.ns);
    let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "shared"}, "data": {"owner": "helm"}});
    api.patch(
        "shared",
        &PatchParams::apply("helm").force(),
        &Patch::Apply(&theirs),
    )
    .await
    .unwrap();
    let plans = repo.diff().await;
    let one = ok(plans.iter().find(|o| o.cluster == "one").unwrap());
    assert_eq!(one.errors.len(), 1, "{one:#?}");
    assert!(
        one.errors[0].message.contains("conflict") && one.errors[0].message.contains("helm"),
        "{}",
        one.errors[0].message
    );
    assert!(
        one.errors[0].message.contains(".data.owner"),
        "{}",
        one.errors[0].message
    );
    let synced = repo.sync().await;
    assert!(err(synced.iter().find(|o| o.cluster == "one").unwrap()).contains("helm"));
    assert_eq!(
        api.get("shared").await.unwrap().data.unwrap()["owner"],
        "helm",
        "nothing applied"
    );
    repo.config("", ", conflicts: takeOver");
    for o in repo.sync().await {
        ok(&o);
    }
    assert_eq!(
        api.get("shared").await.unwrap().data.unwrap()["owner"],
        "keelson"
    );
}

#[tokio::test]
async fn a_crd_and_its_objects_sync_together() {
    let repo = Repo::new("crd");
    let group = format!("{}.keelson.test", unique("g"));
    let crd = format!(
        "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: gizmos.{group}\n\
         spec:\n  group: {group}\n  scope: Namespaced\n  names: {{plural: gizmos, singular: gizmo, kind: Gizmo}}\n\
         \x20 versions:\n  - name: v1\n    served: true\n    storage: true\n    schema:\n      openAPIV3Schema:\n\
         \x20       type: object\n        properties:\n          spec: {{type: object, properties: {{size: {{type: integer}}}}}}\n"
    );
    let cr =
        format!("apiVersion: {group}/v1\nkind: Gizmo\nmetadata:\n  name: g1\nspec:\n  size: 3\n");
    repo.overlay(&[crd, cr]);
    for o in repo.diff().await {
        let p = ok(&o);
        assert!(p.errors.is_empty(), "{p:#?}");
        assert!(p.changes.iter().any(|c| c.kind == "Gizmo" && c.pending));
    }
    for o in repo.sync().await {
        let r = ok(&o);
        assert!(r.applied.iter().any(|a| a.starts_with("Gizmo/")), "{r:#?}");
    }
    for o in repo.diff().await {
        assert!(!ok(&o).has_changes());
    }
}

#[tokio::test]
async fn one_invalid_object_leaves_the_cluster_unchanged() {
    let repo = Repo::new("invalid");
    repo.overlay(&[config_map("a", &[])]);
    repo.sync().await;
    let bad = "apiVersion: v1\nkind: Service\nmetadata:\n  name: broken\nspec:\n  ports:\n  - port: 99999999\n".to_string();
    repo.overlay(&[config_map("a", &[("new", "1")]), bad, config_map("z", &[])]);
    for o in repo.sync().await {
        let e = err(&o);
        assert!(
            e.contains("nothing applied") && e.contains("Service/") && e.contains("broken"),
            "{e}"
        );
    }
    for c in clients().await {
        let api = Api::<ConfigMap>::namespaced(c, &repo.ns);
        assert!(
            api.get("a").await.unwrap().data.is_none(),
            "a must be unchanged"
        );
        assert!(
            api.get_opt("z").await.unwrap().is_none(),
            "z must not exist"
        );
    }
}

#[tokio::test]
async fn a_cluster_that_is_down_fails_alone() {
    let repo = Repo::new("down");
    // A third cluster at a closed port on loopback.
    let dead = repo.path().join("dead.kubeconfig");
    std::fs::write(
        &dead,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: dead\n  cluster: {server: \"https://127.0.0.1:9\", insecure-skip-tls-verify: true}\n\
         users:\n- name: u\n  user: {token: x}\ncontexts:\n- name: dead\n  context: {cluster: dead, user: u}\ncurrent-context: dead\n",
    )
    .unwrap();
    repo.config(
        &format!(
            "- name: dead\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: dead, path: {}}}\n",
            dead.display()
        ),
        "",
    );
    repo.overlay(&[config_map("a", &[])]);
    let outcomes = repo.sync().await;
    assert_eq!(outcomes.len(), 3);
    for o in &outcomes {
        if o.cluster == "dead" {
            assert!(err(o).contains("dead"), "{}", err(o));
        } else {
            assert_eq!(ok(o).applied.len(), 2);
        }
    }
}

#[tokio::test]
async fn secret_values_never_show() {
    let repo = Repo::new("secret");
    let secret = |v: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\nstringData:\n  password: {v}\n"
        )
    };
    repo.overlay(&[secret("first-very-secret-value")]);
    let plans = repo.diff().await;
    let text = serde_json::to_string(&plans).unwrap();
    assert!(!text.contains("first-very-secret-value"));
    assert!(!text.contains(&base64_of("first-very-secret-value")));
    repo.sync().await;
    repo.overlay(&[secret("second-very-secret-value")]);
    let plans = repo.diff().await;
    let text = serde_json::to_string(&plans).unwrap();
    for v in ["first-very-secret-value", "second-very-secret-value"] {
        assert!(!text.contains(v) && !text.contains(&base64_of(v)), "{text}");
    }
    let change = ok(&plans[0])
        .changes
        .iter()
        .find(|c| c.kind == "Secret")
        .unwrap();
    assert_eq!(change.action, Action::Update);
    assert!(
        change.diff.contains("password: (secret hmac:"),
        "{}",
        change.diff
    );
    let synced = repo.sync().await;
    let text = serde_json::to_string(&synced).unwrap();
    assert!(
        !text.contains("second-very-secret-value")
            && !text.contains(&base64_of("second-very-secret-value"))
    );
}

fn base64_of(s: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(s)
}

#[test]
fn kubeconfig_contexts_match_the_example() {
    // The example repository's clusters use the contexts the harness creates.
    let example = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../overlays-example");
    let p = Project::load(&example).unwrap();
    let contexts: Vec<_> = p
        .clusters
        .iter()
        .filter_map(|c| c.kubeconfig.as_ref())
        .map(|k| k.context.as_str())
        .collect();
    assert_eq!(contexts, ["e2e-1", "e2e-2"]);
}

/// `git` in `dir`, failing the test on error.
fn git(dir: &Path, args: &[&str]) -> String {
    let out = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn sync_from_a_git_repository_at_a_commit_records_the_commit() {
    use keelson::source::{Location, RepoSpec, RepoUrl, Rev, Source, Tree, TreeMode};
    let repo = Repo::new("git");
    repo.overlay(&[config_map("from-git", &[("v", "1")])]);
    git(repo.path(), &["init", "-q", "-b", "main"]);
    git(repo.path(), &["add", "-A"]);
    git(repo.path(), &["commit", "-q", "-m", "first"]);
    let first = git(repo.path(), &["rev-parse", "HEAD"]);
    // A later commit changes the object; syncing the first commit must ignore it.
    repo.overlay(&[config_map("from-git", &[("v", "2")])]);
    git(repo.path(), &["commit", "-q", "-am", "second"]);

    let cache = tempfile::tempdir().unwrap();
    let url = RepoUrl::parse(&format!("file://{}", repo.path().display())).unwrap();
    let location = Location::Remote {
        spec: Box::new(RepoSpec::new(url)),
        rev: Rev::parse(&first).unwrap(),
    };
    let tree = tokio::task::spawn_blocking(move || {
        Tree::open(&Source::new(cache.path()), &location, TreeMode::Objects).map(|t| (t, cache))
    })
    .await
    .unwrap()
    .unwrap();
    let (tree, _cache) = tree;
    let project = tree.project().unwrap();
    let overrides = Overrides {
        commit: tree.commit().map(|c| c.to_string()),
        ..Overrides::default()
    };
    let outcomes = sync::sync_in(
        tree.fs(),
        tree.root(),
        &project,
        &Selection::default(),
        &overrides,
    )
    .await
    .unwrap();
    for o in &outcomes {
        ok(o);
    }
    for c in clients().await {
        let cm = Api::<ConfigMap>::namespaced(c.clone(), &repo.ns)
            .get("from-git")
            .await
            .unwrap();
        assert_eq!(cm.data.unwrap()["v"], "1", "the first commit's content");
        let parent = Api::<k8s_openapi::api::core::v1::Secret>::namespaced(
            c,
            keelson::inventory::PARENT_NAMESPACE,
        )
        .get(&keelson::inventory::Set::new(&repo.target, None).parent_name())
        .await
        .unwrap();
        let annotations = parent.metadata.annotations.unwrap();
        assert_eq!(annotations[keelson::inventory::COMMIT], first);
    }
}

#[tokio::test]
async fn status_updates_do_not_hide_spec_or_label_drift() {
    use k8s_openapi::api::apps::v1::Deployment;
    let repo = Repo::new("gen");
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  labels: {tier: front}\n\
        spec:\n  replicas: 2\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n\
        \x20   spec:\n      containers:\n      - {name: web, image: nginx}\n"
        .to_string();
    repo.overlay(&[deployment]);
    repo.sync().await;
    repo.sync().await; // records the state after the first apply settled
    let client = clients().await.remove(0);
    let api = Api::<Deployment>::namespaced(client, &repo.ns);
    // A controller writes status: not drift.
    let status = json!({"status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": 0}});
    api.patch_status("web", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
    let plans = repo.diff().await;
    assert!(!ok(plans.iter().find(|o| o.cluster == "one").unwrap()).has_changes());
    // Someone scales it: spec drift bumps the generation and must show.
    let scale = json!({"spec": {"replicas": 5}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    let plans = repo.diff().await;
    let one = ok(plans.iter().find(|o| o.cluster == "one").unwrap());
    let web = one.changes.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.action, Action::Update, "{one:#?}");
    repo.sync().await;
    // Someone relabels it: metadata drift does not bump the generation and must show too.
    let relabel = json!({"metadata": {"labels": {"tier": "back"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&relabel))
        .await
        .unwrap();
    let plans = repo.diff().await;
    let one = ok(plans.iter().find(|o| o.cluster == "one").unwrap());
    let web = one.changes.iter().find(|c| c.name == "web").unwrap();
    assert_eq!(web.action, Action::Update, "{one:#?}");
    assert!(web.diff.contains("tier: back"), "{}", web.diff);
}
