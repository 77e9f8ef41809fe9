//! The strict reading: unknown fields are errors, each named by its path.

use std::fmt;

use serde_json::Value;

use super::extra::{marked_paths, with_marking};
use super::{ModelError, TektonObject};

/// A problem with one field of an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldIssue {
    /// Where (`.spec.tasks[0].taskSpec.steps[1].workspaces[0].mountpath`).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for FieldIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Field names Tekton users misspell by case; Tekton (Go's `encoding/json`) accepts them
/// in any case while the API server and this model do not.
const CASE_HINTS: &[&str] = &[
    "mountPath",
    "subPath",
    "workingDir",
    "runAfter",
    "taskRef",
    "taskSpec",
    "pipelineRef",
    "pipelineSpec",
    "serviceAccountName",
    "podTemplate",
    "taskRunTemplate",
    "taskRunSpecs",
    "pipelineTaskName",
    "computeResources",
    "volumeMounts",
    "envFrom",
    "onError",
    "readOnly",
    "displayName",
    "stepTemplate",
    "generateName",
    "claimName",
    "emptyDir",
    "configMap",
    "persistentVolumeClaim",
    "volumeClaimTemplate",
    "imagePullPolicy",
    "securityContext",
    "stdoutConfig",
    "stderrConfig",
];

/// Reads a Tekton object strictly: any field the model does not know, including fields
/// inside embedded Kubernetes types, is an issue naming its path.
pub fn check(value: &Value) -> Result<TektonObject, Vec<FieldIssue>> {
    let object = TektonObject::from_value(value).map_err(|e| {
        vec![match e {
            ModelError::Invalid { path, message } => FieldIssue { path, message },
            other @ ModelError::NotTekton { .. } => FieldIssue {
                path: ".".into(),
                message: other.to_string(),
            },
        }]
    })?;
    let mut issues = Vec::new();
    let marked = with_marking(|| serde_json::to_value(&object)).unwrap_or(Value::Null);
    for path in marked_paths(&marked) {
        let key = path.rsplit('.').next().unwrap_or_default();
        let hint = CASE_HINTS
            .iter()
            .find(|known| known.eq_ignore_ascii_case(key) && **known != key)
            .map(|known| {
                format!(
                    " (did you mean {known:?}? Tekton matches keys case-insensitively, the API server does not)"
                )
            })
            .unwrap_or_default();
        issues.push(FieldIssue {
            path,
            message: format!("unknown field{hint}"),
        });
    }
    // Kubernetes types (k8s-openapi) drop keys they do not know instead of keeping them:
    // whatever does not come back out was not understood.
    let written = object.to_value();
    for difference in diff_values(value, &written) {
        if !issues.iter().any(|i| difference.path.starts_with(&i.path)) {
            issues.push(difference);
        }
    }
    if issues.is_empty() {
        Ok(object)
    } else {
        Err(issues)
    }
}

/// Differences between an original JSON document and its re-serialisation: fields lost,
/// fields invented and values changed, each with its path.
pub fn diff_values(original: &Value, written: &Value) -> Vec<FieldIssue> {
    fn walk(a: &Value, b: &Value, path: &mut String, out: &mut Vec<FieldIssue>) {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => {
                for (key, av) in x {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    match y.get(key) {
                        Some(bv) => walk(av, bv, path, out),
                        // Go reads null as the zero value, which omitempty leaves out.
                        None if av.is_null() => {}
                        None => out.push(FieldIssue {
                            path: path.clone(),
                            message: "unknown field (not kept by the model)".into(),
                        }),
                    }
                    path.truncate(len);
                }
                for key in y.keys().filter(|k| !x.contains_key(*k)) {
                    out.push(FieldIssue {
                        path: format!("{path}.{key}"),
                        message: "field added by the model".into(),
                    });
                }
            }
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                for (i, (av, bv)) in x.iter().zip(y).enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(av, bv, path, out);
                    path.truncate(len);
                }
            }
            _ if a == b => {}
            _ => out.push(FieldIssue {
                path: if path.is_empty() {
                    ".".into()
                } else {
                    path.clone()
                },
                message: format!("value changed from {a} to {b}"),
            }),
        }
    }
    let mut out = Vec::new();
    walk(original, written, &mut String::new(), &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run_with(workspaces: Value) -> Value {
        json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
            "metadata": {"name": "r"},
            "spec": {"pipelineSpec": {"tasks": [{"name": "t", "taskSpec": {
                "steps": [{"name": "s", "image": "busybox", "workspaces": workspaces}]
            }}]}}
        })
    }

    #[test]
    fn unknown_fields_are_kept_by_default() {
        let doc = run_with(json!([{"name": "w", "mountpath": "/x"}]));
        let obj = TektonObject::from_value(&doc).unwrap();
        assert_eq!(obj.to_value(), doc);
    }

    #[test]
    fn unknown_fields_are_errors_when_checking_with_a_case_hint() {
        let doc = run_with(json!([{"name": "w", "mountpath": "/x"}]));
        let issues = check(&doc).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(
            issues[0].path,
            ".spec.pipelineSpec.tasks[0].taskSpec.steps[0].workspaces[0].mountpath"
        );
        assert!(issues[0].message.contains("mountPath"), "{}", issues[0]);
    }

    #[test]
    fn unknown_fields_inside_kubernetes_types_are_found() {
        let doc = json!({
            "apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"},
            "spec": {"steps": [{"name": "s", "image": "i", "env": [{"name": "A", "vaule": "x"}]}]}
        });
        let issues = check(&doc).unwrap_err();
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert_eq!(issues[0].path, ".spec.steps[0].env[0].vaule");
    }

    #[test]
    fn wrong_shapes_name_the_field() {
        let doc = json!({
            "apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "p"},
            "spec": {"tasks": [{"name": "t", "retries": "many"}]}
        });
        let issues = check(&doc).unwrap_err();
        assert_eq!(issues[0].path, ".spec.tasks[0].retries", "{issues:?}");
    }

    #[test]
    fn null_and_absent_fields_read_as_gos_zero_values() {
        let run = json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "t"},
            "spec": {"taskRef": {"name": "x"}, "timeout": null}
        });
        assert!(check(&run).is_ok(), "{:?}", check(&run).err());
        let skipped = json!({
            "apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"name": "p"},
            "spec": {"pipelineRef": {"name": "x"}},
            "status": {"skippedTasks": [{"name": "a"}]}
        });
        let obj = check(&skipped).unwrap();
        assert_eq!(obj.to_value(), skipped);
    }

    #[test]
    fn other_kinds_are_refused() {
        let doc = json!({"apiVersion": "v1", "kind": "ConfigMap"});
        assert!(check(&doc).is_err());
        assert!(!TektonObject::is_tekton(&doc));
    }
}
