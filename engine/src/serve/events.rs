//! Kubernetes Events on a target's ApplySet parent, so `kubectl events -n keelson-system`
//! shows what the engine did to that cluster and why.

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use crate::cluster::Cluster;
use crate::inventory;

/// The controller name events carry.
pub const CONTROLLER: &str = "keelson.dev/serve";

/// Normal or Warning.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    Normal,
    Warning,
}

/// Records an event on `target`'s parent in `cluster`. `note` is cut to the API's limit.
/// Failing to record is logged, never fatal: the sync itself already happened.
pub async fn record(
    cluster: &Cluster,
    set: &inventory::Set,
    kind: Kind,
    reason: &str,
    note: &str,
    reporter: &str,
) {
    let name = set.parent_name();
    let event = Event {
        metadata: ObjectMeta {
            // Named like kubectl's events: the object's name and a unique time suffix
            // (a generateName ending in "." fails validation).
            name: Some(format!("{name}.{:x}", unique_suffix())),
            namespace: Some(inventory::PARENT_NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(k8s_openapi::jiff::Timestamp::now())),
        action: Some("Sync".into()),
        reason: Some(reason.into()),
        note: Some(truncate(note, 1000)),
        type_: Some(
            match kind {
                Kind::Normal => "Normal",
                Kind::Warning => "Warning",
            }
            .into(),
        ),
        reporting_controller: Some(CONTROLLER.into()),
        reporting_instance: Some(truncate(reporter, 128)),
        regarding: Some(ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(name),
            namespace: Some(inventory::PARENT_NAMESPACE.into()),
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    let api: Api<Event> = Api::namespaced(cluster.inventory.clone(), inventory::PARENT_NAMESPACE);
    if let Err(error) = api.create(&PostParams::default(), &event).await {
        tracing::warn!(cluster = %cluster.name, target = %set.target, %error, "recording an event failed");
    }
}

fn unique_suffix() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default()
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
