//! apply without a cluster: the exact request sequence of a sync, recorded against
//! [`crate::plan::fake`].

use http::StatusCode;
use serde_json::json;

use crate::plan::fake::{Fake, config_map, core_v1, status};

#[tokio::test]
async fn a_sync_validates_everything_before_its_first_write_then_records_the_inventory() {
    let fake = Fake::new(|method, path, body| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/shop/configmaps") => (
            StatusCode::OK,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        ("PATCH", _) => {
            let mut obj = body.cloned().unwrap_or_default();
            obj["metadata"]["resourceVersion"] = json!("7");
            obj["metadata"]["uid"] = json!("u-1");
            (StatusCode::OK, obj)
        }
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    });
    let report = crate::apply::sync(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        &crate::apply::Options::from_policy(&crate::config::SyncPolicy::default()),
    )
    .await
    .unwrap();
    assert_eq!(report.applied, ["ConfigMap/shop/cm"]);
    // Dry-run of every object first; then the parent (and its namespace) names the new
    // member's kind before the member is written, so a crash between the two leaves
    // nothing a later prune cannot find; then the parent records what was applied.
    assert_eq!(
        fake.lines(),
        [
            "GET /api/v1",
            "GET /api/v1/namespaces/keelson-system/secrets/keelson-shop",
            "GET /api/v1/namespaces/shop/configmaps",
            "PATCH /api/v1/namespaces/shop/configmaps/cm?dryRun=All&fieldManager=keelson-shop",
            "PATCH /api/v1/namespaces/keelson-system?fieldManager=keelson-inventory",
            "PATCH /api/v1/namespaces/keelson-system/secrets/keelson-shop?fieldManager=keelson&force=true",
            "PATCH /api/v1/namespaces/shop/configmaps/cm?fieldManager=keelson-shop&force=true",
            "PATCH /api/v1/namespaces/keelson-system/secrets/keelson-shop?fieldManager=keelson&force=true",
        ]
    );
    let requests = fake.requests();
    let before = requests[5].body.clone().unwrap_or_default();
    assert!(
        before["metadata"]["annotations"]
            .to_string()
            .contains("ConfigMap"),
        "{before}"
    );
    let after = requests[7].body.clone().unwrap_or_default();
    let record = after["stringData"]["keelson.applied.json"]
        .as_str()
        .unwrap_or_default();
    assert!(
        record.contains("v1|ConfigMap|shop|cm") && record.contains("\"rv\":\"7\""),
        "{after}"
    );
}

#[tokio::test]
async fn a_sync_whose_fence_fails_writes_nothing_more() {
    let fake = Fake::new(|method, path, body| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/shop/configmaps") => (
            StatusCode::OK,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        ("PATCH", _) => (StatusCode::OK, body.cloned().unwrap_or_default()),
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    });
    let mut options = crate::apply::Options::from_policy(&crate::config::SyncPolicy::default());
    // The lease is lost while the dry-run is under way.
    options.fence = Some(crate::apply::Fence::new(|| false));
    let error = crate::apply::sync(&fake.cluster("one"), "shop", &[config_map("1")], &options)
        .await
        .unwrap_err();
    assert!(
        matches!(error, crate::apply::SyncError::Fenced { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("no longer holds"), "{error}");
    let writes: Vec<String> = fake
        .lines()
        .into_iter()
        .filter(|l| l.starts_with("PATCH") && !l.contains("dryRun=All"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn the_parent_write_is_conditional_on_the_version_the_plan_read() {
    let parent = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "keelson-shop", "namespace": "keelson-system", "resourceVersion": "41",
            "annotations": {"applyset.kubernetes.io/contains-group-kinds": "ConfigMap",
                "applyset.kubernetes.io/additional-namespaces": "shop"}}
    });
    let fake = Fake::new(move |method, path, body| match (method, path) {
        ("GET", "/api/v1") => (StatusCode::OK, core_v1()),
        ("GET", "/api/v1/namespaces/keelson-system/secrets/keelson-shop") => {
            (StatusCode::OK, parent.clone())
        }
        ("GET", p) if p.ends_with("/configmaps") => (
            StatusCode::OK,
            json!({"kind": "ConfigMapList", "apiVersion": "v1", "metadata": {}, "items": []}),
        ),
        // Another replica wrote the parent since: the server refuses the precondition.
        ("PATCH", "/api/v1/namespaces/keelson-system/secrets/keelson-shop") => {
            status(StatusCode::CONFLICT, "Conflict")
        }
        ("PATCH", _) => (StatusCode::OK, body.cloned().unwrap_or_default()),
        _ => status(StatusCode::NOT_FOUND, "NotFound"),
    });
    let error = crate::apply::sync(
        &fake.cluster("one"),
        "shop",
        &[config_map("1")],
        &crate::apply::Options::from_policy(&crate::config::SyncPolicy::default()),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(error, crate::apply::SyncError::ParentChanged { .. }),
        "{error}"
    );
    let last = fake.requests().pop().unwrap();
    assert!(last.line.contains("secrets/keelson-shop"), "{}", last.line);
    let body = last.body.unwrap_or_default();
    assert_eq!(body["metadata"]["resourceVersion"], "41", "{body}");
}
