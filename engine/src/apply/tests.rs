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
            "PATCH /api/v1/namespaces/shop/configmaps/cm?dryRun=All&fieldManager=keelson",
            "PATCH /api/v1/namespaces/keelson-system?fieldManager=keelson-inventory",
            "PATCH /api/v1/namespaces/keelson-system/secrets/keelson-shop?fieldManager=keelson&force=true",
            "PATCH /api/v1/namespaces/shop/configmaps/cm?fieldManager=keelson",
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
