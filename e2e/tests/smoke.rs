//! Smoke tests proving the harness runs real clusters: server-side apply, dry-run,
//! field-manager conflicts, CRDs, and clusters that keep separate state.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keelson_e2e::ControlPlane;
use kube::Client;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use serde_json::json;

use keelson_e2e::unique;

async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

fn config_map(name: &str, data: serde_json::Value) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data})
}

async fn clients() -> (Client, Client) {
    let cp = ControlPlane::shared();
    let a = cp.clusters()[0].client().await.unwrap();
    let b = cp.clusters()[1].client().await.unwrap();
    (a, b)
}

#[tokio::test]
async fn version_is_the_pinned_kubernetes() {
    let (a, b) = clients().await;
    for client in [a, b] {
        let v = client.apiserver_version().await.unwrap();
        assert_eq!(v.git_version, "v1.37.2");
        assert_eq!((v.major.as_str(), v.minor.as_str()), ("1", "37"));
    }
}

#[tokio::test]
async fn server_side_apply_dry_run_and_conflicts() {
    let (client, _) = clients().await;
    let ns = unique("smoke-ssa");
    namespace(&client, &ns).await;
    let api: Api<ConfigMap> = Api::namespaced(client, &ns);
    let keelson = PatchParams::apply("keelson");

    let applied = api
        .patch(
            "app",
            &keelson,
            &Patch::Apply(config_map("app", json!({"color": "blue"}))),
        )
        .await
        .unwrap();
    let managers: Vec<_> = applied
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter_map(|m| m.manager.clone())
        .collect();
    assert_eq!(managers, vec!["keelson".to_string()]);
    let rv = applied.metadata.resource_version.clone();

    // The same apply as a dry run: the server answers, nothing is stored.
    let dry = api
        .patch(
            "app",
            &keelson.clone().dry_run(),
            &Patch::Apply(config_map("app", json!({"color": "green"}))),
        )
        .await
        .unwrap();
    assert_eq!(dry.data.unwrap()["color"], "green");
    let live = api.get("app").await.unwrap();
    assert_eq!(live.data.unwrap()["color"], "blue");
    assert_eq!(
        live.metadata.resource_version, rv,
        "a dry run must not write"
    );

    // Another manager changing a field keelson owns is a conflict naming keelson and the field.
    let err = api
        .patch(
            "app",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(config_map("app", json!({"color": "red"}))),
        )
        .await
        .unwrap_err();
    match err {
        kube::Error::Api(status) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(status.message.contains("keelson"), "{}", status.message);
            assert!(status.message.contains(".data.color"), "{}", status.message);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // Forcing takes the field over.
    let forced = api
        .patch(
            "app",
            &PatchParams::apply("someone-else").force(),
            &Patch::Apply(config_map("app", json!({"color": "red"}))),
        )
        .await
        .unwrap();
    assert_eq!(forced.data.unwrap()["color"], "red");
}

#[tokio::test]
async fn crd_becomes_established_and_serves_custom_objects() {
    let (client, _) = clients().await;
    let group = format!("{}.keelson.test", unique("g"));
    let crd: CustomResourceDefinition = serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("widgets.{group}")},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    }))
    .unwrap();
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    crds.create(&PostParams::default(), &crd).await.unwrap();

    let established = async {
        loop {
            let c = crds.get(&format!("widgets.{group}")).await.unwrap();
            let ok = c.status.and_then(|s| s.conditions).is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            });
            if ok {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .expect("CRD not Established within 30 s");

    let ns = unique("smoke-crd");
    namespace(&client, &ns).await;
    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(&group, "v1", "Widget"),
        "widgets",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client, &ns, &ar);
    let widget = json!({
        "apiVersion": format!("{group}/v1"), "kind": "Widget",
        "metadata": {"name": "w1"}, "spec": {"size": 3}
    });
    // Discovery of a new group can lag Established by a moment.
    let mut last = None;
    for _ in 0..50 {
        match api
            .patch("w1", &PatchParams::apply("keelson"), &Patch::Apply(&widget))
            .await
        {
            Ok(obj) => {
                assert_eq!(obj.data["spec"]["size"], 3);
                return;
            }
            Err(e) => last = Some(e),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("custom object not accepted: {last:?}");
}

#[tokio::test]
async fn each_cluster_keeps_its_own_state() {
    let (a, b) = clients().await;
    let ns = unique("smoke-iso");
    namespace(&a, &ns).await;
    namespace(&b, &ns).await;
    let on_a: Api<ConfigMap> = Api::namespaced(a, &ns);
    let on_b: Api<ConfigMap> = Api::namespaced(b, &ns);
    let pp = PatchParams::apply("keelson");
    on_a.patch(
        "only-a",
        &pp,
        &Patch::Apply(config_map("only-a", json!({"k": "a"}))),
    )
    .await
    .unwrap();
    on_b.patch(
        "shared",
        &pp,
        &Patch::Apply(config_map("shared", json!({"k": "b"}))),
    )
    .await
    .unwrap();
    on_a.patch(
        "shared",
        &pp,
        &Patch::Apply(config_map("shared", json!({"k": "a"}))),
    )
    .await
    .unwrap();

    assert!(on_b.get_opt("only-a").await.unwrap().is_none());
    assert_eq!(on_a.get("shared").await.unwrap().data.unwrap()["k"], "a");
    assert_eq!(on_b.get("shared").await.unwrap().data.unwrap()["k"], "b");
    let ca = &ControlPlane::shared().clusters()[0].pki().ca_cert;
    let cb = &ControlPlane::shared().clusters()[1].pki().ca_cert;
    assert_ne!(ca, cb, "each cluster has its own CA");
}

#[test]
fn kubeconfig_has_a_context_per_cluster() {
    let cp = ControlPlane::shared();
    let text = std::fs::read_to_string(cp.kubeconfig()).unwrap();
    let config: kube::config::Kubeconfig = serde_saphyr::from_str(&text).unwrap();
    let contexts: Vec<_> = config.contexts.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(contexts, vec!["e2e-1", "e2e-2"]);
    assert_eq!(config.current_context.as_deref(), Some("e2e-1"));
}
