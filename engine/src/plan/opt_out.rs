//! Annotations on rendered objects that opt one object out of what Git would do to it,
//! like Flux's `kustomize.toolkit.fluxcd.io/ssa` and `…/prune`.

use serde_json::Value;

/// `IfNotPresent`: created when missing, never updated. `Ignore`: never applied.
pub const SSA: &str = "keelson.dev/ssa";
/// `disabled`: the object stays on the cluster when it leaves the render.
pub const PRUNE: &str = "keelson.dev/prune";

/// How an object is applied, by its [`SSA`] annotation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ssa {
    Apply,
    IfNotPresent,
    Ignore,
}

fn annotation<'a>(obj: &'a Value, key: &str) -> Option<&'a str> {
    obj.pointer("/metadata/annotations")?.get(key)?.as_str()
}

/// The object's [`SSA`] policy; an unknown value is a mistake in the repository.
pub fn ssa(obj: &Value) -> Result<Ssa, String> {
    match annotation(obj, SSA) {
        None => Ok(Ssa::Apply),
        Some("IfNotPresent") => Ok(Ssa::IfNotPresent),
        Some("Ignore") => Ok(Ssa::Ignore),
        Some(other) => Err(format!(
            "annotation {SSA}: {other:?} is not IfNotPresent or Ignore"
        )),
    }
}

/// Checks the object's [`PRUNE`] annotation.
pub fn check_prune(obj: &Value) -> Result<(), String> {
    match annotation(obj, PRUNE) {
        None | Some("disabled") => Ok(()),
        Some(other) => Err(format!("annotation {PRUNE}: {other:?} is not disabled")),
    }
}

/// Whether a live object asks to be kept when it leaves the render.
pub fn prune_disabled(
    metadata_annotations: Option<&std::collections::BTreeMap<String, String>>,
) -> bool {
    metadata_annotations
        .and_then(|a| a.get(PRUNE))
        .is_some_and(|v| v == "disabled")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn annotated(key: &str, value: &str) -> Value {
        json!({"metadata": {"name": "a", "annotations": {key: value}}})
    }

    #[test]
    fn the_ssa_annotation_is_read_and_checked() {
        assert_eq!(ssa(&json!({"metadata": {}})), Ok(Ssa::Apply));
        assert_eq!(ssa(&annotated(SSA, "IfNotPresent")), Ok(Ssa::IfNotPresent));
        assert_eq!(ssa(&annotated(SSA, "Ignore")), Ok(Ssa::Ignore));
        assert!(
            ssa(&annotated(SSA, "ignore"))
                .unwrap_err()
                .contains("\"ignore\"")
        );
    }

    #[test]
    fn the_prune_annotation_is_read_and_checked() {
        assert!(check_prune(&annotated(PRUNE, "disabled")).is_ok());
        assert!(check_prune(&annotated(PRUNE, "false")).is_err());
        let live = [(PRUNE.to_string(), "disabled".to_string())].into();
        assert!(prune_disabled(Some(&live)));
        assert!(!prune_disabled(None));
    }
}
