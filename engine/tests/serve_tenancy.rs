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

/// The repository's `commitError` on `/api/v1/repositories`, once there is one.
fn commit_error(serve: &Serve) -> Option<String> {
    let (code, body) = serve.get("/api/v1/repositories");
    assert_eq!(code, 200, "{body}");
    let list: Value = serde_json::from_str(&body).unwrap();
    list["repositories"][0]["commitError"]
        .as_str()
        .map(str::to_string)
}

/// Replaces the clusters of the repository's keelson.yaml with `clusters` (YAML lines).
fn with_clusters(repo: &Repo, clusters: &str) {
    let text = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    let targets = &text[text.find("targets:").unwrap()..];
    repo.work
        .write("keelson.yaml", &format!("clusters:\n{clusters}{targets}"));
}

#[test]
fn a_repository_neither_chooses_credentials_nor_reaches_clusters_it_was_not_granted() {
    let rt = runtime();
    let (one, two) = (client(&rt, "e2e-1"), client(&rt, "e2e-2"));
    let repo = Repo::new("creds");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    // Cluster "one", reached through the context of the other cluster.
    with_clusters(
        &repo,
        "- name: one\n  labels: {all: \"yes\"}\n  kubeconfig: {context: e2e-2}\n",
    );
    repo.push("borrow a context");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.poll = Some("*/1 * * * * *");
    options.repository = "  destinations: {clusters: [one]}\n".into();
    let serve = Serve::start(&repo, state.path(), &options);
    wait_for("the refusal", Duration::from_secs(60), || {
        commit_error(&serve).is_some()
    });
    let e = commit_error(&serve).unwrap();
    assert!(
        e.contains("clusters[0].kubeconfig") && e.contains("operator's ServeConfig"),
        "{e}"
    );

    // A cluster the operator did not grant this repository.
    with_clusters(&repo, "- name: one\n- name: two\n");
    repo.push("reach two");
    wait_for("the second refusal", Duration::from_secs(60), || {
        commit_error(&serve).is_some_and(|e| e.contains("clusters[1].name"))
    });
    let e = commit_error(&serve).unwrap();
    assert!(
        e.contains("cluster \"two\" is not granted to this repository (granted: one)"),
        "{e}"
    );
    for c in [&one, &two] {
        for t in ["a", "b"] {
            assert!(
                config_maps(&rt, c, &repo.ns(t)).is_empty(),
                "nothing applied"
            );
        }
    }

    // Naming what it was granted, it deploys there and only there.
    with_clusters(&repo, "- name: one\n");
    repo.push("one only");
    wait_for("both targets on one", Duration::from_secs(60), || {
        ["a", "b"]
            .iter()
            .all(|t| config_maps(&rt, &one, &repo.ns(t)).len() == 1)
    });
    assert!(commit_error(&serve).is_none());
    assert!(config_maps(&rt, &two, &repo.ns("a")).is_empty());
}

#[test]
fn objects_outside_the_destinations_stop_the_sync_before_its_first_write() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("dest");
    repo.overlay("a", 0..2, "1");
    repo.overlay("b", 0..1, "1");
    // Target a also writes into kube-system.
    let objects = std::fs::read_to_string(repo.work.dir.join("a/objects.yaml")).unwrap();
    let stray = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: stray\n  namespace: kube-system\ndata: {v: '1'}\n";
    repo.work
        .write("a/objects.yaml", &format!("{objects}---\n{stray}"));
    repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.repository = format!(
        "  destinations: {{clusters: [one, two], namespaces: [\"{}-*\"], clusterKinds: [Namespace]}}\n",
        repo.id
    );
    let serve = Serve::start(&repo, state.path(), &options);
    let target = repo.target("a");
    wait_for(
        "target b, inside its destinations",
        Duration::from_secs(60),
        || config_maps(&rt, &one, &repo.ns("b")).len() == 1,
    );
    wait_for("the refusal of a", Duration::from_secs(30), || {
        row(&serve.targets(), &target, "one").is_some_and(|r| r["reason"] == "not_granted")
    });
    let message = row(&serve.targets(), &target, "one").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("nothing applied")
            && message.contains(
                "ConfigMap/kube-system/stray: metadata.namespace: kube-system is not among the repository's destinations"
            ),
        "{message}"
    );
    assert!(
        config_maps(&rt, &one, &repo.ns("a")).is_empty(),
        "not one object of a"
    );
    let stray: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(one.clone(), "kube-system");
    assert!(rt.block_on(stray.get_opt("stray")).unwrap().is_none());
}

#[test]
fn an_impersonated_service_account_bounds_what_a_repository_can_do() {
    use k8s_openapi::api::core::v1::Namespace;
    use kube::api::{Patch, PatchParams};
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("imp");
    repo.overlay("a", 0..1, "1");
    repo.overlay("b", 0..1, "1");
    with_clusters(&repo, "- name: one\n");
    repo.push("first");
    // As the cluster's admin: the tenant's ServiceAccount may manage ConfigMaps in a's
    // namespace (and that Namespace object), nothing else.
    let (ns_a, tenants) = (repo.ns("a"), format!("{}-sa", repo.id));
    let apply = |value: Value| {
        let obj: kube::api::DynamicObject = serde_json::from_value(value.clone()).unwrap();
        let kind = value["kind"].as_str().unwrap();
        let (group, version) = match value["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (
                String::new(),
                value["apiVersion"].as_str().unwrap().to_string(),
            ),
        };
        let gvk = kube::api::GroupVersionKind::gvk(&group, &version, kind);
        let plural = format!("{}s", kind.to_lowercase());
        let resource = kube::api::ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: kube::Api<kube::api::DynamicObject> = match value["metadata"]["namespace"].as_str()
        {
            Some(ns) => kube::Api::namespaced_with(one.clone(), ns, &resource),
            None => kube::Api::all_with(one.clone(), &resource),
        };
        rt.block_on(api.patch(
            obj.metadata.name.as_deref().unwrap(),
            &PatchParams::apply("e2e-admin"),
            &Patch::Apply(&obj),
        ))
        .unwrap();
    };
    for ns in [&ns_a, &tenants] {
        let n: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": ns}})).unwrap();
        rt.block_on(kube::Api::<Namespace>::all(one.clone()).patch(
            ns,
            &PatchParams::apply("e2e-admin"),
            &Patch::Apply(&n),
        ))
        .unwrap();
    }
    let user = format!("system:serviceaccount:{tenants}:shop");
    for object in [
        serde_json::json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "shop", "namespace": tenants}}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "shop", "namespace": ns_a},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch", "create", "patch", "delete"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "shop", "namespace": ns_a},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "shop"},
            "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": tenants}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
            "metadata": {"name": format!("{}-ns", repo.id)},
            "rules": [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns_a], "verbs": ["get", "patch"]}]}),
        serde_json::json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": format!("{}-ns", repo.id)},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("{}-ns", repo.id)},
            "subjects": [{"kind": "ServiceAccount", "name": "shop", "namespace": tenants}]}),
    ] {
        apply(object);
    }
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.repository = format!("  serviceAccount: {tenants}/shop\n");
    let serve = Serve::start(&repo, state.path(), &options);
    wait_for(
        "target a, which its ServiceAccount may write",
        Duration::from_secs(60),
        || config_maps(&rt, &one, &ns_a).len() == 1,
    );
    let target_b = repo.target("b");
    wait_for("target b, refused by RBAC", Duration::from_secs(30), || {
        row(&serve.targets(), &target_b, "one").is_some_and(|r| r["phase"] == "failed")
    });
    let message = row(&serve.targets(), &target_b, "one").unwrap()["message"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        message.contains("forbidden") && message.contains(&user),
        "{message}"
    );
    let b: kube::Api<Namespace> = kube::Api::all(one.clone());
    assert!(rt.block_on(b.get_opt(&repo.ns("b"))).unwrap().is_none());
    // The inventory is the engine's: the tenant needs no access to keelson-system.
    assert!(synced_commit(&rt, &one, &repo.target("a")).is_some());
}

#[test]
fn two_repositories_with_the_same_target_names_each_prune_only_their_own_objects() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let (first, second) = (Repo::new("twin"), Repo::new("twin"));
    // The second repository names its targets exactly as the first does; its objects go
    // to its own namespaces.
    let text = std::fs::read_to_string(second.work.dir.join("keelson.yaml")).unwrap();
    second
        .work
        .write("keelson.yaml", &text.replace(&second.id, &first.id));
    for r in [&first, &second] {
        r.overlay("a", 0..2, "1");
        r.overlay("b", 0..1, "1");
        r.push("first");
    }
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.poll = Some("*/1 * * * * *");
    options.repositories = format!(
        "- url: {}\n  ref: main\n  poll: \"*/1 * * * * *\"\n",
        second.url()
    );
    let _serve = Serve::start(&first, state.path(), &options);
    let both = |n: usize| {
        config_maps(&rt, &one, &first.ns("a")).len() == n
            && config_maps(&rt, &one, &second.ns("a")).len() == n
    };
    wait_for(
        "both repositories' target a",
        Duration::from_secs(60),
        || both(2),
    );
    assert_eq!(
        parents(&rt, &one, &first.target("a")).len(),
        2,
        "one inventory each"
    );

    // The second repository drops a ConfigMap: only its own goes.
    second.overlay("a", 0..1, "1");
    second.push("drop cm-1");
    wait_for("the second's prune", Duration::from_secs(60), || {
        config_maps(&rt, &one, &second.ns("a")).len() == 1
    });
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        config_maps(&rt, &one, &first.ns("a")).len(),
        2,
        "the first's stay"
    );
    // And the first's next commit does not take the second's objects for its own.
    first.overlay("a", 0..2, "2");
    first.push("bump");
    wait_for("the first's update", Duration::from_secs(60), || {
        config_maps(&rt, &one, &first.ns("a"))
            .iter()
            .all(|(_, v)| v == "2")
    });
    assert_eq!(
        config_maps(&rt, &one, &second.ns("a")),
        [("cm-0".to_string(), "1".to_string())]
    );
}

#[test]
fn an_inventory_from_before_repository_keys_is_taken_over_by_its_first_keyed_sync() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("legacy");
    repo.overlay("a", 0..3, "1");
    repo.overlay("b", 0..1, "1");
    repo.push("first");
    // Synced before inventories were keyed: from a tree of no known origin (a copy of the
    // work tree without its .git), reaching cluster one by its context.
    let plain = tempfile::tempdir().unwrap();
    for dir in ["a", "b"] {
        std::fs::create_dir_all(plain.path().join(dir)).unwrap();
        for file in ["objects.yaml", "kustomization.yaml"] {
            std::fs::copy(
                repo.work.dir.join(dir).join(file),
                plain.path().join(dir).join(file),
            )
            .unwrap();
        }
    }
    let kubeconfig = keelson_e2e::ControlPlane::shared()
        .kubeconfig()
        .display()
        .to_string();
    std::fs::write(
        plain.path().join("keelson.yaml"),
        format!(
            "clusters:\n- name: one\n  labels: {{all: \"yes\"}}\n  kubeconfig: {{context: e2e-1, path: {kubeconfig}}}\n\
             targets:\n- name: {}\n  path: a\n  clusterSelector: {{all: \"yes\"}}\n",
            repo.target("a")
        ),
    )
    .unwrap();
    let project = keelson::config::Project::load(plain.path()).unwrap();
    let outcomes = rt
        .block_on(keelson::sync::sync(
            plain.path(),
            &project,
            &keelson::sync::Selection::default(),
            &keelson::sync::Overrides::default(),
        ))
        .unwrap();
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o.result, keelson::sync::OutcomeResult::Ok(_)))
    );
    let names = |t: &str| -> Vec<String> {
        parents(&rt, &one, &repo.target(t))
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect()
    };
    assert_eq!(names("a"), [format!("keelson-{}", repo.target("a"))]);

    // The served repository drops cm-2: its first keyed sync prunes it from the unkeyed
    // inventory, relabels the rest and retires the unkeyed parent.
    repo.overlay("a", 0..2, "1");
    repo.push("drop cm-2");
    let state = tempfile::tempdir().unwrap();
    let _serve = Serve::start(&repo, state.path(), &EngineOptions::new());
    wait_for("the keyed sync", Duration::from_secs(60), || {
        config_maps(&rt, &one, &repo.ns("a")).len() == 2
            && names("a")
                .iter()
                .all(|n| n != &format!("keelson-{}", repo.target("a")))
            && !names("a").is_empty()
    });
    let keyed = parents(&rt, &one, &repo.target("a")).remove(0);
    let id = keyed.metadata.labels.unwrap()["applyset.kubernetes.io/id"].clone();
    let api: kube::Api<k8s_openapi::api::core::v1::ConfigMap> =
        kube::Api::namespaced(one.clone(), &repo.ns("a"));
    for cm in ["cm-0", "cm-1"] {
        let labels = rt.block_on(api.get(cm)).unwrap().metadata.labels.unwrap();
        assert_eq!(
            labels["applyset.kubernetes.io/part-of"], id,
            "{cm} relabelled"
        );
    }
}

/// One commit per attack on target a, each refused with its reason while what is
/// deployed stays exactly as it was (listed from the cluster after every one).
#[test]
fn hostile_commits_are_refused_and_change_nothing() {
    let rt = runtime();
    let one = client(&rt, "e2e-1");
    let repo = Repo::new("hostile");
    repo.overlay("a", 0..2, "1");
    repo.overlay("b", 0..1, "1");
    repo.push("first");
    let state = tempfile::tempdir().unwrap();
    let mut options = EngineOptions::new();
    options.poll = Some("*/1 * * * * *");
    options.extra = "limits: {renderNodes: 5000}\n".into();
    let serve = Serve::start(&repo, state.path(), &options);
    let (target, ns) = (repo.target("a"), repo.ns("a"));
    let deployed = || config_maps(&rt, &one, &ns);
    wait_for("the first commit", Duration::from_secs(60), || {
        deployed().len() == 2
    });
    let before = deployed();
    let objects = std::fs::read_to_string(repo.work.dir.join("a/objects.yaml")).unwrap();
    let kustomization = |extra: &str| format!("resources:\n- objects.yaml\n{extra}");
    let big_list: String = (0..6000).map(|i| format!("  k{i}: v\n")).collect();
    // (the attack, the files its commit writes, what the refusal says)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, &'a str);
    let cases: Vec<Case> = vec![
        (
            "an env file reading the engine's environment",
            vec![
                ("a/env.txt", "HOME\n".to_string()),
                (
                    "a/kustomization.yaml",
                    kustomization(&format!(
                        "configMapGenerator:\n- name: leak\n  namespace: {ns}\n  envs: [env.txt]\n"
                    )),
                ),
            ],
            "\"HOME\" has no '=': its value would come from the engine's environment",
        ),
        (
            "a helm release name that is a flag",
            vec![
                (
                    "a/charts/web/Chart.yaml",
                    "apiVersion: v2\nname: web\nversion: 0.1.0\n".to_string(),
                ),
                (
                    "a/kustomization.yaml",
                    kustomization(
                        "helmCharts:\n- name: web\n  releaseName: --post-renderer=/bin/sh\n",
                    ),
                ),
            ],
            "is not a valid release name",
        ),
        (
            "a render of more YAML nodes than the operator allows",
            vec![
                (
                    "a/big.yaml",
                    format!(
                        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: {ns}\ndata:\n{big_list}"
                    ),
                ),
                ("a/kustomization.yaml", kustomization("- big.yaml\n")),
            ],
            "budget of 5000 YAML nodes",
        ),
        (
            "a target path out of the repository",
            vec![(
                "keelson.yaml",
                std::fs::read_to_string(repo.work.dir.join("keelson.yaml"))
                    .unwrap()
                    .replace("path: a\n", "path: ../../etc\n"),
            )],
            "must be a path inside the repository",
        ),
    ];
    let pristine = std::fs::read_to_string(repo.work.dir.join("keelson.yaml")).unwrap();
    for (attack, files, refusal) in cases {
        repo.work.write("keelson.yaml", &pristine);
        repo.work.write("a/objects.yaml", &objects);
        repo.work.write("a/kustomization.yaml", &kustomization(""));
        for (path, text) in &files {
            repo.work.write(path, text);
        }
        repo.push(attack);
        let said = |serve: &Serve| {
            let row = row(&serve.targets(), &target, "one")
                .map(|r| r["message"].as_str().unwrap_or_default().to_string())
                .unwrap_or_default();
            let (_, repos) = serve.get("/api/v1/repositories");
            format!("{row}\n{repos}")
        };
        let start = std::time::Instant::now();
        while !said(&serve).contains(refusal) {
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{attack}: no refusal {refusal:?}; the engine says:\n{}",
                said(&serve)
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(deployed(), before, "{attack}: the cluster changed");
        for path in files
            .iter()
            .map(|(p, _)| p)
            .filter(|p| **p != "keelson.yaml")
        {
            repo.work.remove(path);
        }
    }
}
