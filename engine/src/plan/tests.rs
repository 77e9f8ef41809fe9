//! plan without a cluster: the exact requests of a plan, recorded against [`super::fake`].

use http::StatusCode;
use serde_json::{Value, json};

use super::fake::{Fake, config_map, core_v1, status};
use super::{Action, View};
use crate::config::{Conflicts, SyncPolicy};

async fn plan(
    cluster: &crate::cluster::Cluster,
    target: &str,
    objects: &[serde_json::Map<String, Value>],
    conflicts: Conflicts,
) -> Result<(super::Plan, Vec<super::Desired>, super::Prunes), super::PlanError> {
    let policy = SyncPolicy {
        conflicts,
        ..SyncPolicy::default()
    };
    let set = crate::inventory::Set::new(target, None);
    super::plan(cluster, &set, objects, &policy, View::default()).await
}

/// A cluster with no parent for the target and `live` (if any) as the only ConfigMap.
fn cluster(live: Option<Value>) -> Fake {
    Fake::new(move |method, path, body| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/keelson-system/secrets/keelson-shop") => {
            status(StatusCode::NOT_FOUND, "NotFound")
        }
        ("GET", "/api/v1/namespaces/shop/configmaps") => (
            StatusCode::OK,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {},
                   "items": live.iter().collect::<Vec<_>>()}),
        ),
        // The dry-run answers with the object as applied, as the server would.
        ("PATCH", "/api/v1/namespaces/shop/configmaps/cm") => {
            let mut obj = body.cloned().unwrap_or_default();
            obj["metadata"]["resourceVersion"] = json!("7");
            (StatusCode::OK, obj)
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    })
}

#[tokio::test]
async fn a_new_object_is_discovered_listed_and_dry_run_in_that_order() {
    let fake = cluster(None);
    let (p, desired, prunes) = plan(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        Conflicts::TakeOver,
    )
    .await
    .unwrap();
    assert_eq!(
        fake.lines(),
        [
            "GET /api/v1",
            "GET /api/v1/namespaces/keelson-system/secrets/keelson-shop",
            "GET /api/v1/namespaces/shop/configmaps",
            "PATCH /api/v1/namespaces/shop/configmaps/cm?dryRun=All&fieldManager=keelson-shop",
        ]
    );
    assert_eq!(p.count(Action::Create), 1, "{p:?}");
    assert!(p.errors.is_empty() && prunes.delete.is_empty() && desired.len() == 1);
    // What is dry-run is the render, labelled as a member of the target's inventory.
    let sent = fake.requests()[3].body.clone().unwrap_or_default();
    assert_eq!(sent["data"]["v"], "1");
    assert!(
        sent["metadata"]["labels"]
            .as_object()
            .is_some_and(|l| !l.is_empty()),
        "{sent}"
    );
}

/// A cluster where another manager owns `.data.v` of the live ConfigMap: the unforced
/// dry-run conflicts, the forced one answers.
fn cluster_with_an_intruder() -> Fake {
    Fake::new(move |method, path, body| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/shop/configmaps") => (
            StatusCode::OK,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": [
                {"apiVersion": "v1", "kind": "ConfigMap", "data": {"v": "0"},
                 "metadata": {"name": "cm", "namespace": "shop", "resourceVersion": "6",
                              "labels": {crate::inventory::PART_OF: crate::inventory::Set::new("shop", None).id()}}}]}),
        ),
        ("PATCH", "/api/v1/namespaces/shop/configmaps/cm") => {
            let mut obj = body.cloned().unwrap_or_default();
            obj["metadata"]["resourceVersion"] = json!("7");
            (StatusCode::OK, obj)
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    })
    .refusing_unforced_patches(json!({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
        "message": "Apply failed with 1 conflict: conflict with \"intruder\" using v1: .data.v",
        "details": {"causes": [{"reason": "FieldManagerConflict",
                                "message": "conflict with \"intruder\" using v1", "field": ".data.v"}]}
    }))
}

#[tokio::test]
async fn a_field_of_another_manager_is_taken_over_and_named() {
    let fake = cluster_with_an_intruder();
    let (p, _, _) = plan(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        Conflicts::TakeOver,
    )
    .await
    .unwrap();
    assert!(p.errors.is_empty(), "{:?}", p.errors);
    let c = &p.changes[0];
    assert_eq!(
        (c.action, c.fields.as_slice()),
        (Action::Update, &[".data.v".to_string()][..])
    );
    assert_eq!(
        c.takeovers[0].to_string(),
        "`.data.v` owned by `intruder`, taken over"
    );
    assert_eq!(
        c.summary(),
        "update ConfigMap/shop/cm: .data.v; `.data.v` owned by `intruder`, taken over"
    );
    let patches: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert_eq!(
        patches,
        [
            "PATCH /api/v1/namespaces/shop/configmaps/cm?dryRun=All&fieldManager=keelson-shop",
            "PATCH /api/v1/namespaces/shop/configmaps/cm?dryRun=All&fieldManager=keelson-shop&force=true",
        ]
    );
}

#[tokio::test]
async fn with_conflicts_fail_the_conflict_is_an_error_of_the_plan() {
    let fake = cluster_with_an_intruder();
    let (p, _, _) = plan(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        Conflicts::Fail,
    )
    .await
    .unwrap();
    assert_eq!(p.errors.len(), 1, "{p:?}");
    assert!(
        p.errors[0].message.contains("field-manager conflict")
            && p.errors[0].message.contains("intruder")
    );
}

#[tokio::test]
async fn drift_is_an_update_with_a_diff_and_nothing_is_written() {
    let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
                      "metadata": {"name": "cm", "namespace": "shop", "resourceVersion": "6"},
                      "data": {"v": "0"}});
    let fake = cluster(Some(live));
    let (p, _, _) = plan(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        Conflicts::TakeOver,
    )
    .await
    .unwrap();
    assert_eq!(p.count(Action::Update), 1, "{p:?}");
    let change = &p.changes[0];
    assert!(
        change.diff.contains("-  v: \"0\"") && change.diff.contains("+  v: \"1\""),
        "{}",
        change.diff
    );
    // Every write was a dry-run.
    for r in fake
        .requests()
        .iter()
        .filter(|r| !r.line.starts_with("GET "))
    {
        assert!(r.line.contains("dryRun=All"), "{}", r.line);
    }
}

#[tokio::test]
async fn an_api_error_while_listing_names_the_cluster_and_the_kind() {
    let fake = Fake::new(|method, path, _| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/keelson-system/secrets/keelson-shop") => {
            status(StatusCode::NOT_FOUND, "NotFound")
        }
        _ => status(StatusCode::FORBIDDEN, "Forbidden"),
    });
    let e = plan(
        &fake.cluster("prod"),
        "shop",
        &[config_map("1")],
        Conflicts::TakeOver,
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(e.contains("cluster prod") && e.contains("ConfigMap"), "{e}");
    assert!(
        fake.lines().iter().all(|l| !l.starts_with("PATCH")),
        "nothing dry-run after the error"
    );
}

#[tokio::test]
async fn an_object_of_another_applyset_is_an_error_and_is_not_dry_run() {
    let mut live = config_map("1");
    live.insert(
        "metadata".into(),
        json!({"name": "cm", "namespace": "shop", "resourceVersion": "3",
               "labels": {crate::inventory::PART_OF: "applyset-of-someone-else-v1"}}),
    );
    let fake = cluster(Some(Value::Object(live)));
    let (p, _, _) = plan(
        &fake.cluster("one"),
        "shop",
        &[config_map("2")],
        Conflicts::TakeOver,
    )
    .await
    .unwrap();
    assert_eq!(p.errors.len(), 1, "{p:?}");
    assert!(
        p.errors[0].message.contains("another ApplySet")
            && p.errors[0].message.contains("applyset-of-someone-else-v1"),
        "{:?}",
        p.errors
    );
    assert!(
        fake.lines().iter().all(|l| !l.starts_with("PATCH")),
        "{:?}",
        fake.lines()
    );
}
