//! `ignoreDifferences`: fields Git gives away. Before an object is planned, every matching
//! rule takes its fields out of the apply, so the diff cannot show them and the apply
//! cannot change them (Argo CD's `RespectIgnoreDifferences`, always on).
//!
//! A field another manager owns (an HPA's `/spec/replicas`) leaves the request: that
//! manager keeps it alone. A field nobody else owns is sent with its live value instead:
//! dropping a field keelson alone owns would make the server remove it.

use serde_json::{Map, Value};

use super::LEGACY_FIELD_MANAGER;
use crate::config::IgnoreDifference;

/// Applies the rules matching `desired` (given the live object, if any); returns what was
/// given away, for the plan's output. An object still to be created is applied whole.
pub fn apply(
    rules: &[IgnoreDifference],
    desired: &mut Value,
    (api_version, kind, namespace, name): (&str, &str, Option<&str>, &str),
    live: Option<&Value>,
    own: &str,
) -> Vec<String> {
    let Some(live) = live else {
        return Vec::new();
    };
    let mut given = Vec::new();
    for rule in rules
        .iter()
        .filter(|r| r.matches(api_version, kind, namespace, name))
    {
        for pointer in &rule.json_pointers {
            if let Some(what) = give_pointer(desired, live, pointer, own) {
                given.push(what);
            }
        }
        for manager in &rule.managed_fields_managers {
            for fields in managed_fields(live).filter(|(m, _)| *m == manager.as_str()) {
                if strip_owned(desired, fields.1) {
                    given.push(format!("fields of `{manager}`"));
                }
            }
        }
    }
    given.dedup();
    given
}

fn give_pointer(desired: &mut Value, live: &Value, pointer: &str, own: &str) -> Option<String> {
    desired.pointer(pointer)?;
    let segments = segments(pointer);
    let owners: Vec<&str> = managed_fields(live)
        .filter(|(m, fields)| {
            *m != own && *m != LEGACY_FIELD_MANAGER && owns(fields, live, &segments)
        })
        .map(|(m, _)| m)
        .collect();
    match live.pointer(pointer) {
        Some(value) if owners.is_empty() => {
            let value = value.clone();
            *desired.pointer_mut(pointer)? = value;
            Some(format!("{pointer} (live value kept)"))
        }
        _ => {
            remove(desired, &segments);
            let by = if owners.is_empty() {
                String::new()
            } else {
                format!(" (owned by {})", owners.join(", "))
            };
            Some(format!("{pointer}{by}"))
        }
    }
}

/// RFC 6901 segments, unescaped.
fn segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn remove(value: &mut Value, segments: &[String]) {
    let Some((last, parents)) = segments.split_last() else {
        return;
    };
    let mut at = value;
    for s in parents {
        at = match at {
            Value::Object(m) => match m.get_mut(s) {
                Some(v) => v,
                None => return,
            },
            Value::Array(a) => match s.parse::<usize>().ok().and_then(|i| a.get_mut(i)) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    match at {
        Value::Object(m) => {
            m.remove(last);
        }
        Value::Array(a) => {
            if let Some(i) = last.parse::<usize>().ok().filter(|i| *i < a.len()) {
                a.remove(i);
            }
        }
        _ => {}
    }
}

/// The (manager, fieldsV1) entries of a live object.
fn managed_fields(live: &Value) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    live.pointer("/metadata/managedFields")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let manager = e.get("manager")?.as_str()?;
            let fields = e.get("fieldsV1")?.as_object()?;
            Some((manager, fields))
        })
}

/// The key in a fieldsV1 set under which the list element `element` (at `index`) is
/// found: by its merge keys (`k:`), its value (`v:`) or its position (`i:`).
fn element_key<'f>(
    fields: &'f Map<String, Value>,
    element: &Value,
    index: usize,
) -> Option<&'f Value> {
    fields.iter().find_map(|(key, child)| {
        let hit = if let Some(keys) = key.strip_prefix("k:") {
            serde_json::from_str::<Map<String, Value>>(keys)
                .is_ok_and(|keys| keys.iter().all(|(k, v)| element.get(k) == Some(v)))
        } else if let Some(value) = key.strip_prefix("v:") {
            serde_json::from_str::<Value>(value).is_ok_and(|v| &v == element)
        } else if let Some(i) = key.strip_prefix("i:") {
            i.parse() == Ok(index)
        } else {
            false
        };
        hit.then_some(child)
    })
}

/// Whether a fieldsV1 set covers the field at `segments` of `live`: the field itself, or
/// an atomic field above it.
fn owns(fields: &Map<String, Value>, live: &Value, segments: &[String]) -> bool {
    let Some((first, rest)) = segments.split_first() else {
        return true;
    };
    let (child, next) = match live {
        Value::Object(m) => (fields.get(&format!("f:{first}")), m.get(first)),
        Value::Array(a) => match first
            .parse::<usize>()
            .ok()
            .and_then(|i| Some((i, a.get(i)?)))
        {
            Some((i, element)) => (element_key(fields, element, i), Some(element)),
            None => (None, None),
        },
        _ => (None, None),
    };
    match (child.and_then(Value::as_object), next) {
        (Some(c), _) if c.is_empty() => true,
        (Some(c), Some(next)) => owns(c, next, rest),
        (Some(_), None) => rest.is_empty(),
        (None, _) => false,
    }
}

/// Takes out of `desired` every field a fieldsV1 set owns, keeping the merge keys of
/// list elements (an element without them cannot be applied). Returns whether anything
/// was taken out.
fn strip_owned(desired: &mut Value, fields: &Map<String, Value>) -> bool {
    let mut changed = false;
    match desired {
        Value::Object(m) => {
            for (key, child) in fields {
                let Some(name) = key.strip_prefix("f:") else {
                    continue;
                };
                let Some(child) = child.as_object() else {
                    continue;
                };
                if child.is_empty() {
                    changed |= m.remove(name).is_some();
                } else if let Some(v) = m.get_mut(name) {
                    changed |= strip_owned(v, child);
                }
            }
        }
        Value::Array(a) => {
            let keys: Vec<String> = fields
                .keys()
                .filter_map(|k| k.strip_prefix("k:"))
                .filter_map(|k| serde_json::from_str::<Map<String, Value>>(k).ok())
                .flat_map(|k| k.keys().map(|k| format!("f:{k}")).collect::<Vec<_>>())
                .collect();
            let mut drop = Vec::new();
            for (i, element) in a.iter_mut().enumerate() {
                let Some(child) = element_key(fields, element, i).and_then(Value::as_object) else {
                    continue;
                };
                if child.is_empty() {
                    drop.push(i);
                    continue;
                }
                // The element's merge keys stay, so it still names the element.
                let child: Map<String, Value> = child
                    .iter()
                    .filter(|(k, _)| !keys.contains(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                changed |= strip_owned(element, &child);
            }
            changed |= !drop.is_empty();
            for i in drop.into_iter().rev() {
                a.remove(i);
            }
        }
        _ => {}
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rule(yaml: &str) -> IgnoreDifference {
        crate::yaml::from_str(yaml).unwrap()
    }

    fn live_scaled_by(manager: &str) -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a", "managedFields": [
                {"manager": "keelson", "operation": "Apply", "fieldsV1": {
                    "f:spec": {"f:template": {"f:spec": {"f:containers": {
                        "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}},
                {"manager": manager, "operation": "Update", "subresource": "scale",
                 "fieldsV1": {"f:spec": {"f:replicas": {}}}}
            ]},
            "spec": {"replicas": 5, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:1", "env": [{"name": "A", "value": "1"}]}]}}}
        })
    }

    fn desired() -> Value {
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "a"},
            "spec": {"replicas": 2, "template": {"spec": {"containers": [
                {"name": "web", "image": "web:2"}]}}}
        })
    }

    const ID: (&str, &str, Option<&str>, &str) = ("apps/v1", "Deployment", Some("a"), "web");
    const OWN: &str = "keelson-web";

    #[test]
    fn a_field_another_manager_owns_leaves_the_request() {
        let rules = [rule(
            "{group: apps, kind: Deployment, jsonPointers: [/spec/replicas]}",
        )];
        let mut d = desired();
        let given = apply(&rules, &mut d, ID, Some(&live_scaled_by("hpa")), OWN);
        assert_eq!(given, ["/spec/replicas (owned by hpa)"]);
        assert_eq!(d.pointer("/spec/replicas"), None);
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("web:2"))
        );
    }

    #[test]
    fn a_field_nobody_else_owns_keeps_its_live_value() {
        let rules = [rule(
            "{kind: Deployment, jsonPointers: [/spec/template/spec/containers/0/image]}",
        )];
        let mut d = desired();
        let given = apply(&rules, &mut d, ID, Some(&live_scaled_by("hpa")), OWN);
        assert_eq!(
            given,
            ["/spec/template/spec/containers/0/image (live value kept)"]
        );
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0/image"),
            Some(&json!("web:1"))
        );
        assert_eq!(d.pointer("/spec/replicas"), Some(&json!(2)));
    }

    #[test]
    fn an_object_to_create_or_of_another_kind_is_untouched() {
        let rules = [rule(
            "{kind: Deployment, name: web, jsonPointers: [/spec/replicas]}",
        )];
        let mut d = desired();
        assert!(apply(&rules, &mut d, ID, None, OWN).is_empty());
        assert!(
            apply(
                &rules,
                &mut d,
                ("apps/v1", "Deployment", Some("a"), "api"),
                Some(&live_scaled_by("x")),
                OWN
            )
            .is_empty()
        );
        assert_eq!(d, desired());
    }

    #[test]
    fn a_managers_fields_leave_the_request_but_list_keys_stay() {
        let mut live = live_scaled_by("hpa");
        live["metadata"]["managedFields"][1] = json!({"manager": "injector", "operation": "Update",
            "fieldsV1": {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
                "k:{\"name\":\"web\"}": {".": {}, "f:name": {}, "f:image": {}}}}}}}});
        let rules = [rule(
            "{kind: Deployment, managedFieldsManagers: [injector]}",
        )];
        let mut d = desired();
        assert_eq!(
            apply(&rules, &mut d, ID, Some(&live), OWN),
            ["fields of `injector`"]
        );
        assert_eq!(d.pointer("/spec/replicas"), None);
        assert_eq!(
            d.pointer("/spec/template/spec/containers/0"),
            Some(&json!({"name": "web"}))
        );
    }

    #[test]
    fn ownership_follows_atomic_fields_and_escaped_pointers() {
        let live = json!({"metadata": {"annotations": {"a/b": "x"}}, "data": {"k": "v"}});
        let atomic = json!({"f:data": {}}).as_object().cloned().unwrap();
        assert!(owns(&atomic, &live, &segments("/data/k")));
        let annotation = json!({"f:metadata": {"f:annotations": {"f:a/b": {}}}});
        assert!(owns(
            annotation.as_object().unwrap(),
            &live,
            &segments("/metadata/annotations/a~1b")
        ));
        assert!(!owns(
            annotation.as_object().unwrap(),
            &live,
            &segments("/data/k")
        ));
    }
}
