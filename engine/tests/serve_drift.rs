//! `keelson serve` and drift, end to end: self-heal takes a hand edit back while an
//! HPA-like manager keeps the replicas `ignoreDifferences` gives it, and targets that
//! leave `keelson.yaml` go as their `onRemoval` says.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use support::serve::*;

/// The notes of the Events with `reason` about `target`'s parent.
fn events(
    rt: &tokio::runtime::Runtime,
    c: &kube::Client,
    target: &str,
    reason: &str,
) -> Vec<String> {
    let api: Api<Event> = Api::namespaced(c.clone(), "keelson-system");
    let parent = format!("keelson-{target}.");
    rt.block_on(api.list(&Default::default()))
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.reason.as_deref() == Some(reason))
        .filter(|e| {
            e.regarding
                .as_ref()
                .and_then(|r| r.name.as_deref())
                .is_some_and(|n| n.starts_with(&parent))
        })
        .filter_map(|e| e.note)
        .collect()
}

fn replicas_and_image(rt: &tokio::runtime::Runtime, api: &Api<Deployment>) -> (i64, String) {
    let d = serde_json::to_value(rt.block_on(api.get("web")).unwrap()).unwrap();
    (
        d.pointer("/spec/replicas")
            .and_then(serde_json::Value::as_i64)
            .unwrap_or(-1),
        d.pointer("/spec/template/spec/containers/0/image")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_string(),
    )
}

fn as_manager(manager: &str) -> PatchParams {
    PatchParams {
        field_manager: Some(manager.into()),
        ..PatchParams::default()
    }
}

#[test]
fn self_heal_takes_a_hand_edit_back_and_leaves_ignored_replicas_to_their_scaler() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("heal-hpa");
    let config = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    let healing = config.replace(
        "  path: a\n  clusterSelector: {all: \"yes\"}\n",
        "  path: a\n  clusterSelector: {all: \"yes\"}\n  sync:\n    selfHeal: true\n    \
         ignoreDifferences: [{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}]\n",
    );
    assert_ne!(config, healing);
    repo.work.write("keelson.yaml", &healing);
    let ns = repo.ns("a");
    repo.work.write(
        "a/objects.yaml",
        &format!(
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {ns}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: {ns}\nspec:\n  \
             replicas: 2\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n    \
             spec: {{containers: [{{name: web, image: \"web:1\"}}]}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: seed\n  namespace: {ns}\n  \
             annotations: {{keelson.dev/ssa: IfNotPresent}}\ndata: {{v: '1'}}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: never\n  namespace: {ns}\n  \
             annotations: {{keelson.dev/ssa: Ignore}}\ndata: {{v: '1'}}\n"
        ),
    );
    repo.work
        .write("a/kustomization.yaml", "resources:\n- objects.yaml\n");
    repo.overlay("b", 0..1, "1");
    let c1 = repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.self_heal = Some("*/1 * * * * *");
    // GitHub, when the suite has its API description: the status says what the Event says.
    let github = keelson_e2e::github::FakeGitHub::from_env().map(Result::unwrap);
    if let Some(fake) = &github {
        let token = state.path().join("token");
        std::fs::write(&token, "ghp_drift_test_token\n").unwrap();
        options.extra = format!(
            "github: {{tokenFile: {}, apiUrl: \"{}\"}}\n",
            token.display(),
            fake.url()
        );
    }
    let _serve = Serve::start(&repo, &state.path().join("engine"), &options);
    let target = repo.target("a");
    wait_for("the first commit", Duration::from_secs(60), || {
        synced_commit(&rt, &one, &target).as_deref() == Some(c1.as_str())
    });
    let api: Api<Deployment> = Api::namespaced(one.clone(), &ns);
    assert_eq!(replicas_and_image(&rt, &api), (2, "web:1".into()));
    let seeded = || config_maps(&rt, &one, &ns);
    assert_eq!(
        seeded(),
        [("seed".to_string(), "1".to_string())],
        "Ignore: never applied"
    );
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(one.clone(), &ns);
    let tune = json!({"data": {"v": "tuned"}});
    rt.block_on(cms.patch("seed", &as_manager("tuner"), &Patch::Merge(tune)))
        .unwrap();

    // An autoscaler scales it; someone edits the image by hand.
    rt.block_on(api.patch_scale(
        "web",
        &as_manager("hpa"),
        &Patch::Merge(json!({"spec": {"replicas": 5}})),
    ))
    .unwrap();
    let edit = json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "evil:1"}]}}}});
    rt.block_on(api.patch("web", &as_manager("intruder"), &Patch::Strategic(edit)))
        .unwrap();
    wait_for(
        "self-heal to take the image back",
        Duration::from_secs(30),
        || replicas_and_image(&rt, &api).1 == "web:1",
    );
    // Rounds of self-heal later, the replicas are still the scaler's.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(replicas_and_image(&rt, &api), (5, "web:1".into()));
    let tuned = [("seed".to_string(), "tuned".to_string())];
    assert_eq!(seeded(), tuned, "IfNotPresent: never updated");
    if let Some(fake) = &github {
        let context = format!("keelson/{target}/one");
        let said: Vec<String> = fake
            .calls()
            .iter()
            .filter_map(|c| c.body.clone())
            .filter(|b| b["context"] == context.as_str())
            .filter_map(|b| b["description"].as_str().map(str::to_string))
            .collect();
        assert!(
            said.iter().any(
                |d| d.starts_with(&format!("took over Deployment/{ns}/web: "))
                    && d.contains("intruder")
            ),
            "{said:?}"
        );
        assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    }
    let took = events(&rt, &one, &target, "TookOver");
    assert!(
        took.iter()
            .any(|n| n.contains(&format!("Deployment/{ns}/web"))
                && n.contains("owned by `intruder`, taken over")
                && !n.contains("replicas")),
        "{took:?}"
    );
}

#[test]
fn targets_that_leave_keelson_yaml_are_pruned_or_orphaned_on_every_cluster() {
    let rt = runtime();
    let clients = [client(&rt, "e2e-1"), client(&rt, "e2e-2")];
    let repo = Repo::new("leave");
    let with = |targets: &[(&str, &str)]| {
        let mut text = String::from(
            "clusters:\n\
             - name: one\n  labels: {all: \"yes\"}\n\
             - name: two\n  labels: {all: \"yes\"}\n\
             targets:\n",
        );
        for (t, sync) in targets {
            text.push_str(&format!(
                "- name: {}\n  path: {t}\n  clusterSelector: {{all: \"yes\"}}\n  sync: {{{sync}}}\n",
                repo.target(t)
            ));
        }
        repo.work.write("keelson.yaml", &text);
    };
    with(&[
        ("a", "onRemoval: prune, pruneGuardPercent: 100"),
        ("b", ""),
        ("c", ""),
    ]);
    for t in ["a", "b", "c"] {
        repo.overlay(t, 0..2, "1");
    }
    // One object of the pruned target asks to stay.
    let objects = std::fs::read_to_string(repo.work.dir.join("a/objects.yaml")).unwrap();
    repo.work.write(
        "a/objects.yaml",
        &format!(
            "{objects}---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kept\n  namespace: {}\n  \
             annotations: {{keelson.dev/prune: disabled}}\ndata: {{v: '1'}}\n",
            repo.ns("a")
        ),
    );
    let c1 = repo.push("three targets");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.poll = Some("*/1 * * * * *");
    let _serve = Serve::start(&repo, state.path(), &options);
    wait_for("the first commit", Duration::from_secs(60), || {
        clients.iter().all(|c| {
            ["a", "b", "c"]
                .iter()
                .all(|t| synced_commit(&rt, c, &repo.target(t)).as_deref() == Some(c1.as_str()))
        })
    });
    with(&[("c", "")]);
    repo.push("only c");
    let parent = |c: &kube::Client, t: &str| !parents(&rt, c, &repo.target(t)).is_empty();
    wait_for("a pruned and b orphaned", Duration::from_secs(60), || {
        clients.iter().all(|c| {
            config_maps(&rt, c, &repo.ns("a")) == [("kept".to_string(), "1".to_string())]
                && !parent(c, "a")
                && !parent(c, "b")
        })
    });
    for c in &clients {
        assert_eq!(config_maps(&rt, c, &repo.ns("b")).len(), 2, "orphans stay");
        assert!(parent(c, "c") && config_maps(&rt, c, &repo.ns("c")).len() == 2);
        let removed = events(&rt, c, &repo.target("a"), "Removed");
        assert!(
            removed
                .iter()
                .any(|n| n.contains("2 object(s) pruned, 2 kept")),
            "{removed:?}"
        );
        assert!(!events(&rt, c, &repo.target("b"), "Orphaned").is_empty());
    }
}
