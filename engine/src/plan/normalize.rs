//! What a diff compares: objects without server-set bookkeeping, and Secrets without
//! their values.

use std::sync::OnceLock;

use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::Sha256;

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

/// The key of Secret fingerprints: the installation's (`fingerprintKeyFile` in the
/// ServeConfig, `$KEELSON_FINGERPRINT_KEY_FILE` for the CLI), else one drawn at random
/// for this process. Keyed, a fingerprint in a CI log cannot be brute-forced back to a
/// low-entropy value by anyone without the key.
static KEY: OnceLock<Vec<u8>> = OnceLock::new();

/// The environment variable naming the CLI's fingerprint key file.
pub const KEY_FILE_ENV: &str = "KEELSON_FINGERPRINT_KEY_FILE";

/// Sets the fingerprint key once, before any diff; later calls change nothing. Returns
/// whether this call set it.
pub fn set_fingerprint_key(key: Vec<u8>) -> bool {
    KEY.set(key).is_ok()
}

/// Reads a key file (trailing line breaks dropped); an empty one is an error.
pub fn load_fingerprint_key(path: &std::path::Path) -> Result<Vec<u8>, String> {
    let mut key = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    while matches!(key.last(), Some(b'\n' | b'\r')) {
        key.pop();
    }
    if key.is_empty() {
        return Err(format!("{}: the fingerprint key is empty", path.display()));
    }
    Ok(key)
}

fn key() -> &'static [u8] {
    KEY.get_or_init(|| {
        let from_env = std::env::var_os(KEY_FILE_ENV)
            .map(std::path::PathBuf::from)
            .and_then(|p| load_fingerprint_key(&p).ok());
        from_env.unwrap_or_else(|| {
            use rand::RngCore;
            let mut k = vec![0u8; 32];
            rand::rng().fill_bytes(&mut k);
            k
        })
    })
}

/// A short fingerprint of a secret value: shows that it changed, not what it is. The
/// same value gives the same fingerprint under one key (one installation).
pub fn fingerprint(value: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key()).expect("HMAC takes any key length");
    mac.update(value.as_bytes());
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().take(8).map(|b| format!("{b:02x}")).collect();
    format!("(secret hmac:{hex})")
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

    #[test]
    fn a_fingerprint_is_keyed_so_a_plain_hash_of_a_guess_does_not_match_it() {
        use sha2::Digest;
        let value = "aHVudGVyMg==";
        let plain: String = Sha256::digest(value.as_bytes())
            .iter()
            .take(8)
            .map(|b| format!("{b:02x}"))
            .collect();
        assert!(!fingerprint(value).contains(&plain[..8]));
        assert_eq!(
            fingerprint(value),
            fingerprint(value),
            "stable within one key"
        );
    }
}
