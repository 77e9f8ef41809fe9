//! `keelson serve` with repositories it does not trust: what a repository's own files may
//! ask for, and what only the operator's ServeConfig can grant. The real binary, real
//! clusters, a real git daemon.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::time::Duration;

use serde_json::Value;
use support::serve::*;

fn row<'a>(rows: &'a [Value], target: &str, cluster: &str) -> Option<&'a Value> {
    rows.iter()
        .find(|r| r["target"] == target && r["cluster"] == cluster)
}

#[test]
fn load_restrictions_none_is_the_operators_to_grant() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("restrict");
    // Target a reads a file outside its kustomization's directory (inside the repository).
    let text = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    repo.work.write(
        "keelson.yaml",
        &text.replacen(
            "path: a\n",
            "path: a\n  loadRestrictor: LoadRestrictionsNone\n",
            1,
        ),
    );
    repo.overlay("a", 0..1, "1");
    repo.work.write(
        "shared/extra.yaml",
        &format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: extra\n  namespace: {}\ndata:\n  v: shared\n",
            repo.ns("a")
        ),
    );
    repo.work.write(
        "a/kustomization.yaml",
        "resources:\n- objects.yaml\n- ../shared/extra.yaml\n",
    );
    repo.overlay("b", 0..1, "1");
    repo.push("first");
    let target = repo.target("a");
    let ns = repo.ns("a");

    // Not granted: the target fails, saying why; the repository's other target deploys.
    let state = tempfile::tempdir().unwrap();
    let serve = Serve::start(&repo, &state.path().join("1"), &EngineOptions::new());
    wait_for("the refusal", Duration::from_secs(60), || {
        row(&serve.targets(), &target, "one").is_some_and(|r| r["reason"] == "render")
    });
    let message = row(&serve.targets(), &target, "one").unwrap()["message"].clone();
    assert!(
        message.as_str().unwrap().contains("keelson.yaml")
            && message.as_str().unwrap().contains("loadRestrictor")
            && message.as_str().unwrap().contains("not granted"),
        "{message}"
    );
    wait_for("target b", Duration::from_secs(60), || {
        config_maps(&rt, &one, &repo.ns("b")).len() == 1
    });
    assert!(
        config_maps(&rt, &one, &ns).is_empty(),
        "nothing of target a applied"
    );
    drop(serve);

    // Granted to this repository: the same commit deploys.
    let mut options = EngineOptions::new();
    options.repository = "  allowLoadRestrictionsNone: true\n".into();
    let _serve = Serve::start(&repo, &state.path().join("2"), &options);
    wait_for("target a with the grant", Duration::from_secs(60), || {
        config_maps(&rt, &one, &ns)
            .iter()
            .any(|(n, v)| n == "extra" && v == "shared")
    });
}
