//! What a diff compares: objects without server-set bookkeeping, and Secrets without
//! their values.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Metadata the server sets; never drift.
const SERVER_METADATA: &[&str] = &[
    "managedFields",
    "resourceVersion",
    "uid",
    "generation",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Annotations that may hold a copy of a Secret's values.
const COPY_ANNOTATIONS: &[&str] = &["kubectl.kubernetes.io/last-applied-configuration"];

/// Strips server-set fields and masks Secret values.
pub fn normalize(obj: &Value) -> Value {
    let mut obj = obj.clone();
    if let Value::Object(m) = &mut obj {
        m.remove("status");
        if let Some(Value::Object(meta)) = m.get_mut("metadata") {
            for key in SERVER_METADATA {
                meta.remove(*key);
            }
            if let Some(Value::Object(a)) = meta.get("annotations")
                && a.is_empty()
            {
                meta.remove("annotations");
            }
        }
        if m.get("kind").and_then(Value::as_str) == Some("Secret") {
            mask_secret(m);
        }
    }
    obj
}

/// A short, stable fingerprint of a secret value: shows that it changed, not what it is.
pub fn fingerprint(value: &str) -> String {
    let digest = Sha256::digest(value.as_bytes());
    let hex: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("(secret sha256:{hex})")
}

fn mask_secret(m: &mut Map<String, Value>) {
    for field in ["data", "stringData"] {
        if let Some(Value::Object(data)) = m.get_mut(field) {
            for (_, v) in data.iter_mut() {
                let text = v.as_str().unwrap_or_default().to_string();
                *v = Value::String(fingerprint(&text));
            }
        }
    }
    if let Some(Value::Object(meta)) = m.get_mut("metadata")
        && let Some(Value::Object(a)) = meta.get_mut("annotations")
    {
        for key in COPY_ANNOTATIONS {
            if let Some(v) = a.get_mut(*key) {
                *v = Value::String("(masked)".into());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn server_fields_go_and_secrets_are_masked() {
        let live = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "uid": "1", "resourceVersion": "9", "generation": 2,
                         "managedFields": [{}], "creationTimestamp": "x",
                         "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{\"p\":\"aHVudGVyMg==\"}}"}},
            "data": {"password": "aHVudGVyMg=="},
            "status": {}
        });
        let n = normalize(&live);
        let text = n.to_string();
        assert!(!text.contains("aHVudGVyMg"), "{text}");
        assert!(!text.contains("resourceVersion") && !text.contains("managedFields"));
        assert_eq!(n["data"]["password"], fingerprint("aHVudGVyMg=="));
        assert_ne!(fingerprint("a"), fingerprint("b"));
    }
}
