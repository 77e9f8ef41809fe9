//! Fields the typed model does not declare, kept so that nothing read is lost on write.
//!
//! Every Tekton struct carries an [`Extra`] (`#[serde(flatten)]`). Normal parsing keeps
//! unknown keys there and writes them back unchanged; `check` mode reports them. To find
//! them without a hand-written walk over every struct, `check` serialises the object once
//! with *marking* switched on for the current thread: unknown keys are then written with a
//! prefix that no real key has, and a walk over the JSON collects their paths.

use std::cell::Cell;
use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// Keys of a JSON object that the typed model does not know, with their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra(pub BTreeMap<String, Value>);

impl Extra {
    /// Whether there are no unknown keys.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

thread_local! {
    static MARKING: Cell<bool> = const { Cell::new(false) };
}

/// The prefix marking unknown keys while [`with_marking`] runs (a control character: no
/// Kubernetes field name contains one).
pub(crate) const MARK: &str = "\u{1}unknown\u{1}";

/// Runs `f` with unknown keys written as `MARK + key` on this thread.
pub(crate) fn with_marking<T>(f: impl FnOnce() -> T) -> T {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            MARKING.with(|m| m.set(self.0));
        }
    }
    let _reset = Reset(MARKING.with(|m| m.replace(true)));
    f()
}

impl Serialize for Extra {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let marking = MARKING.with(Cell::get);
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (key, value) in &self.0 {
            if marking {
                map.serialize_entry(&format!("{MARK}{key}"), value)?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Extra {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        BTreeMap::deserialize(deserializer).map(Extra)
    }
}

/// Paths (`.spec.tasks[0].foo`) of every marked key in `value`.
pub(crate) fn marked_paths(value: &Value) -> Vec<String> {
    fn walk(value: &Value, path: &mut String, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for (key, child) in map {
                    let len = path.len();
                    match key.strip_prefix(MARK) {
                        Some(unknown) => {
                            path.push('.');
                            path.push_str(unknown);
                            out.push(path.clone());
                        }
                        None => {
                            path.push('.');
                            path.push_str(key);
                            walk(child, path, out);
                        }
                    }
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(child, path, out);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut String::new(), &mut out);
    out
}
