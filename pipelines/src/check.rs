//! Checking a set of YAML documents: the strict typed reading, then Tekton's rules, with
//! references between the documents (taskRef, pipelineRef) resolved among them.

use std::fmt;

use serde_json::Value;

use crate::model::{self, TektonObject};
use crate::validate::{Catalog, validate_in};

/// One parsed document and where it came from.
#[derive(Debug, Clone)]
pub struct Document {
    /// The file (or other source) it was read from.
    pub source: String,
    /// Its position in that source (0-based).
    pub index: usize,
    /// The document.
    pub value: Value,
}

/// One problem: source, object and field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The file.
    pub source: String,
    /// `Kind/name`, or `document N` when the object has no usable identity.
    pub object: String,
    /// The field path (`.spec.tasks[0].name`), `.` for the whole object.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}: {}",
            self.source, self.object, self.path, self.message
        )
    }
}

/// The result of checking a set of documents.
#[derive(Debug, Default)]
pub struct Report {
    /// Every Tekton object read (leniently, unknown fields kept), with its source.
    pub objects: Vec<(String, TektonObject)>,
    /// Every problem found.
    pub findings: Vec<Finding>,
    /// Documents that are not one of the four kinds, as `source: apiVersion/kind`.
    pub skipped: Vec<String>,
}

/// Checks every Pipeline, Task, PipelineRun and TaskRun among `documents`.
pub fn check_documents(documents: &[Document]) -> Report {
    let mut report = Report::default();
    for doc in documents {
        let label = || format!("document {}", doc.index + 1);
        if !TektonObject::is_tekton(&doc.value) {
            let api_version = doc.value.get("apiVersion").and_then(Value::as_str);
            let kind = doc.value.get("kind").and_then(Value::as_str);
            if api_version.is_some_and(|a| a.starts_with("tekton.dev/")) {
                // A Tekton kind this model does not cover, or another version: say so.
                report.findings.push(Finding {
                    source: doc.source.clone(),
                    object: label(),
                    path: ".".into(),
                    message: format!(
                        "{}/{} is not checked: only tekton.dev/v1 Pipeline, Task, PipelineRun and TaskRun are",
                        api_version.unwrap_or_default(),
                        kind.unwrap_or_default()
                    ),
                });
            } else {
                report.skipped.push(format!(
                    "{}: {}/{}",
                    doc.source,
                    api_version.unwrap_or("?"),
                    kind.unwrap_or("?")
                ));
            }
            continue;
        }
        match model::check(&doc.value) {
            Ok(object) => report.objects.push((doc.source.clone(), object)),
            Err(issues) => {
                let lenient = TektonObject::from_value(&doc.value).ok();
                let object = lenient
                    .as_ref()
                    .map_or_else(label, TektonObject::display_name);
                for issue in issues {
                    report.findings.push(Finding {
                        source: doc.source.clone(),
                        object: object.clone(),
                        path: issue.path,
                        message: issue.message,
                    });
                }
                if let Some(object) = lenient {
                    report.objects.push((doc.source.clone(), object));
                }
            }
        }
    }
    let catalog = Catalog::from_objects(report.objects.iter().map(|(_, o)| o));
    for (source, object) in &report.objects {
        for issue in validate_in(object, &catalog) {
            report.findings.push(Finding {
                source: source.clone(),
                object: object.display_name(),
                path: issue.path,
                message: issue.message,
            });
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn findings_name_source_object_and_field() {
        let docs = vec![
            Document {
                source: "ci.yaml".into(),
                index: 0,
                value: json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"},
                    "spec": {"steps": [{"name": "s", "image": "i", "scirpt": "x"}]}}),
            },
            Document {
                source: "ci.yaml".into(),
                index: 1,
                value: json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
            },
            Document {
                source: "old.yaml".into(),
                index: 0,
                value: json!({"apiVersion": "tekton.dev/v1beta1", "kind": "Task"}),
            },
        ];
        let report = check_documents(&docs);
        let text: Vec<String> = report.findings.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            vec![
                "ci.yaml: Task/t: .spec.steps[0].scirpt: unknown field",
                "old.yaml: document 1: .: tekton.dev/v1beta1/Task is not checked: only tekton.dev/v1 Pipeline, Task, PipelineRun and TaskRun are",
            ]
        );
        assert_eq!(report.skipped, vec!["ci.yaml: v1/ConfigMap"]);
        assert_eq!(report.objects.len(), 1);
    }
}
