//! Building a PipelineRun: typed params checked against the Pipeline's declarations,
//! workspaces, timeouts, service account, and labels tying the run to its source.

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::model::{
    Duration, Extra, FieldIssue, Param, ParamSpec, ParamType, ParamValue, Pipeline, PipelineRef,
    PipelineRun, PipelineRunSpec, PipelineSpec, PipelineTaskRunTemplate,
    PipelineWorkspaceDeclaration, TimeoutFields, WorkspaceBinding,
};
use crate::validate::validate_pipeline_run;

/// Label: the repository the run builds (sanitised; the exact value is an annotation).
pub const LABEL_REPOSITORY: &str = "keelson.dev/repository";
/// Label: the commit the run builds.
pub const LABEL_COMMIT: &str = "keelson.dev/commit";
/// Label: the deployment target the run gates.
pub const LABEL_TARGET: &str = "keelson.dev/target";
/// Label: which attempt of Keelson's retry policy this run is (1, 2, …).
pub const LABEL_ATTEMPT: &str = "keelson.dev/attempt";
/// Label: the run this one retries (the first attempt's name).
pub const LABEL_RETRY_OF: &str = "keelson.dev/retry-of";
/// `app.kubernetes.io/managed-by`.
pub const LABEL_MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Where a run's code comes from and what it gates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The repository (`github.com/org/repo`, a URL, …).
    pub repository: String,
    /// The commit SHA.
    pub commit: String,
    /// The deployment target.
    pub target: String,
}

/// The run could not be built: every problem, each naming its field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct BuildError {
    /// The problems.
    pub issues: Vec<FieldIssue>,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid PipelineRun:")?;
        for issue in &self.issues {
            write!(f, "\n  {issue}")?;
        }
        Ok(())
    }
}

/// What the run runs.
#[derive(Debug, Clone)]
enum Target {
    /// A Pipeline in the cluster whose declarations we know: params are checked strictly.
    Declared {
        name: String,
        params: Vec<ParamSpec>,
        workspaces: Vec<PipelineWorkspaceDeclaration>,
    },
    /// A Pipeline in the cluster known only by name: params are taken as given.
    Named(String),
    /// An embedded spec: params it does not declare propagate to its tasks.
    Embedded(Box<PipelineSpec>),
}

/// A param as given: typed, or text to read by the declared type.
#[derive(Debug, Clone)]
enum Given {
    Value(ParamValue),
    Text(String),
}

/// Builds a [`PipelineRun`] and checks it before anything is sent.
#[derive(Debug, Clone)]
pub struct RunBuilder {
    target: Target,
    namespace: Option<String>,
    name: Option<String>,
    generate_name: Option<String>,
    params: Vec<(String, Given)>,
    workspaces: Vec<WorkspaceBinding>,
    timeouts: Option<TimeoutFields>,
    service_account: Option<String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
}

impl RunBuilder {
    fn new(target: Target) -> Self {
        RunBuilder {
            target,
            namespace: None,
            name: None,
            generate_name: None,
            params: Vec::new(),
            workspaces: Vec::new(),
            timeouts: None,
            service_account: None,
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
        }
    }

    /// A run of this Pipeline by reference; params and workspaces are checked against
    /// what it declares (unknown names are errors).
    pub fn for_pipeline(pipeline: &Pipeline) -> Self {
        let mut b = Self::new(Target::Declared {
            name: pipeline.metadata.name.clone().unwrap_or_default(),
            params: pipeline.spec.params().to_vec(),
            workspaces: pipeline.spec.workspaces.clone().unwrap_or_default(),
        });
        b.namespace = pipeline.metadata.namespace.clone();
        b
    }

    /// A run of the Pipeline with this name, whose declarations are not known here.
    pub fn for_pipeline_name(name: impl Into<String>) -> Self {
        Self::new(Target::Named(name.into()))
    }

    /// A run of an embedded pipeline spec.
    pub fn for_spec(spec: PipelineSpec) -> Self {
        Self::new(Target::Embedded(Box::new(spec)))
    }

    /// The namespace.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// A fixed name (default: `generateName: <pipeline>-`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// A name prefix the API server completes.
    pub fn generate_name(mut self, prefix: impl Into<String>) -> Self {
        self.generate_name = Some(prefix.into());
        self
    }

    /// A typed param value.
    pub fn param(mut self, name: impl Into<String>, value: impl Into<ParamValue>) -> Self {
        self.params.push((name.into(), Given::Value(value.into())));
        self
    }

    /// A param given as text (`--param k=v`), read by its declared type: an array is a
    /// JSON array or comma-separated, an object a JSON object or `k=v,k2=v2`.
    pub fn param_text(mut self, name: impl Into<String>, text: impl Into<String>) -> Self {
        self.params.push((name.into(), Given::Text(text.into())));
        self
    }

    /// A workspace binding.
    pub fn workspace(mut self, binding: WorkspaceBinding) -> Self {
        self.workspaces.push(binding);
        self
    }

    /// Timeouts of the whole run, its tasks and its `finally` tasks.
    pub fn timeouts(
        mut self,
        pipeline: Option<Duration>,
        tasks: Option<Duration>,
        finally: Option<Duration>,
    ) -> Self {
        self.timeouts = Some(TimeoutFields {
            pipeline,
            tasks,
            finally,
            extra: Extra::default(),
        });
        self
    }

    /// The service account every TaskRun uses.
    pub fn service_account(mut self, name: impl Into<String>) -> Self {
        self.service_account = Some(name.into());
        self
    }

    /// Labels (and exact-value annotations) tying the run to repository, commit, target.
    pub fn source(mut self, source: &Source) -> Self {
        for (key, value) in [
            (LABEL_REPOSITORY, &source.repository),
            (LABEL_COMMIT, &source.commit),
            (LABEL_TARGET, &source.target),
        ] {
            self.labels.insert(key.into(), label_value(value));
            self.annotations.insert(key.into(), value.clone());
        }
        self
    }

    /// Any other label.
    pub fn label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Any other annotation.
    pub fn annotation(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.annotations.insert(key.into(), value.into());
        self
    }

    /// The checked PipelineRun, or every problem found.
    pub fn build(self) -> Result<PipelineRun, BuildError> {
        let mut issues = Vec::new();
        let (declared, declared_workspaces, strict): (
            &[ParamSpec],
            Option<&[PipelineWorkspaceDeclaration]>,
            bool,
        ) = match &self.target {
            Target::Declared {
                params, workspaces, ..
            } => (params, Some(workspaces), true),
            Target::Named(_) => (&[], None, false),
            // An embedded spec is also checked by validation (required params, types).
            Target::Embedded(spec) => (spec.params(), None, false),
        };

        let mut params: Vec<Param> = Vec::new();
        for (i, (name, given)) in self.params.iter().enumerate() {
            let path = format!(".spec.params[{i}]");
            if params.iter().any(|p| p.name == *name) {
                issues.push(issue(
                    format!("{path}.name"),
                    format!("param {name:?} is given more than once"),
                ));
                continue;
            }
            let spec = declared.iter().find(|d| d.name == *name);
            if spec.is_none() && strict {
                let known: Vec<&str> = declared.iter().map(|d| d.name.as_str()).collect();
                issues.push(issue(
                    format!("{path}.name"),
                    format!(
                        "the pipeline declares no param {name:?} (it declares: {})",
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
                continue;
            }
            let ty = spec.map_or(ParamType::String, ParamSpec::effective_type);
            let value = match given {
                Given::Value(v) => v.clone(),
                Given::Text(text) => match parse_text(text, ty) {
                    Ok(v) => v,
                    Err(message) => {
                        issues.push(issue(format!("{path}.value"), message));
                        continue;
                    }
                },
            };
            if let Some(spec) = spec {
                if value.param_type() != ty {
                    issues.push(issue(
                        format!("{path}.value"),
                        format!(
                            "param {name:?} is declared {ty} but given {}",
                            value.param_type()
                        ),
                    ));
                    continue;
                }
                if let (Some(allowed), Some(text)) = (&spec.enum_, value.as_text())
                    && !allowed.iter().any(|a| *a == text)
                {
                    issues.push(issue(
                        format!("{path}.value"),
                        format!("{text:?} is not one of {}", allowed.join(", ")),
                    ));
                }
                if let (ParamValue::Object(given), Some(props)) = (&value, &spec.properties) {
                    for key in props.keys().filter(|k| !given.contains_key(*k)) {
                        issues.push(issue(
                            format!("{path}.value"),
                            format!("object param {name:?} misses key {key:?}"),
                        ));
                    }
                }
            }
            params.push(Param::new(name.clone(), value));
        }
        if strict {
            for spec in declared {
                if spec.default.is_none() && !params.iter().any(|p| p.name == spec.name) {
                    issues.push(issue(
                        ".spec.params",
                        format!("required param {:?} (no default) is not given", spec.name),
                    ));
                }
            }
        }
        if let Some(declared) = declared_workspaces {
            for (i, w) in self.workspaces.iter().enumerate() {
                if !declared.iter().any(|d| d.name == w.name) {
                    issues.push(issue(
                        format!(".spec.workspaces[{i}].name"),
                        format!("the pipeline declares no workspace {:?}", w.name),
                    ));
                }
            }
            for d in declared {
                if !d.optional.unwrap_or(false) && !self.workspaces.iter().any(|w| w.name == d.name)
                {
                    issues.push(issue(
                        ".spec.workspaces",
                        format!("workspace {:?} of the pipeline is not bound", d.name),
                    ));
                }
            }
        }

        let (pipeline_ref, pipeline_spec, pipeline_name) = match self.target {
            Target::Declared { name, .. } | Target::Named(name) => (
                Some(PipelineRef {
                    name: Some(name.clone()),
                    ..PipelineRef::default()
                }),
                None,
                name,
            ),
            Target::Embedded(spec) => (None, Some(*spec), "run".to_string()),
        };
        let mut labels = self.labels;
        labels.insert(LABEL_MANAGED_BY.into(), "keelson".into());
        let generate_name = match (&self.name, self.generate_name) {
            (None, None) => Some(format!("{pipeline_name}-")),
            (_, g) => g,
        };
        let metadata = ObjectMeta {
            name: self.name,
            generate_name,
            namespace: self.namespace,
            labels: Some(labels),
            annotations: (!self.annotations.is_empty()).then_some(self.annotations),
            ..ObjectMeta::default()
        };
        let spec = PipelineRunSpec {
            pipeline_ref,
            pipeline_spec,
            params: (!params.is_empty()).then_some(params),
            timeouts: self.timeouts,
            task_run_template: self.service_account.map(|sa| PipelineTaskRunTemplate {
                service_account_name: Some(sa),
                ..PipelineTaskRunTemplate::default()
            }),
            workspaces: (!self.workspaces.is_empty()).then_some(self.workspaces),
            ..PipelineRunSpec::default()
        };
        let run = PipelineRun::new(metadata, spec);
        // Everything Tekton's admission would refuse (timeouts, names, embedded spec, …),
        // without repeating what was already said above.
        for found in validate_pipeline_run(&run) {
            if !issues.contains(&found) {
                issues.push(found);
            }
        }
        if issues.is_empty() {
            Ok(run)
        } else {
            Err(BuildError { issues })
        }
    }
}

fn issue(path: impl Into<String>, message: impl Into<String>) -> FieldIssue {
    FieldIssue {
        path: path.into(),
        message: message.into(),
    }
}

/// Reads a param given as text by its declared type.
pub fn parse_text(text: &str, ty: ParamType) -> Result<ParamValue, String> {
    match ty {
        ParamType::String => Ok(ParamValue::String(text.to_string())),
        ParamType::Array if text.trim_start().starts_with('[') => {
            serde_json::from_str::<Vec<String>>(text)
                .map(ParamValue::Array)
                .map_err(|e| format!("not a JSON array of strings: {e}"))
        }
        ParamType::Array => Ok(ParamValue::Array(if text.is_empty() {
            Vec::new()
        } else {
            text.split(',').map(str::to_string).collect()
        })),
        ParamType::Object if text.trim_start().starts_with('{') => {
            serde_json::from_str::<BTreeMap<String, String>>(text)
                .map(ParamValue::Object)
                .map_err(|e| format!("not a JSON object of strings: {e}"))
        }
        ParamType::Object => text
            .split(',')
            .filter(|kv| !kv.is_empty())
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .ok_or_else(|| format!("expected key=value pairs, got {kv:?}"))
            })
            .collect::<Result<BTreeMap<_, _>, _>>()
            .map(ParamValue::Object),
    }
}

/// A valid label value: at most 63 of `[A-Za-z0-9._-]`, alphanumeric at both ends.
pub fn label_value(text: &str) -> String {
    let replaced: String = text
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '.'
            }
        })
        .collect();
    let trimmed = replaced.trim_matches(|c: char| !c.is_ascii_alphanumeric());
    // Keep the end (the repository name) when too long.
    let tail = if trimmed.len() > 63 {
        &trimmed[trimmed.len() - 63..]
    } else {
        trimmed
    };
    tail.trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::TektonObject;
    use serde_json::json;

    fn pipeline() -> Pipeline {
        let doc = json!({
            "apiVersion": "tekton.dev/v1", "kind": "Pipeline",
            "metadata": {"name": "build", "namespace": "ci"},
            "spec": {
                "params": [
                    {"name": "revision"},
                    {"name": "features", "type": "array", "default": []},
                    {"name": "profile", "default": "dev", "enum": ["dev", "release"]},
                    {"name": "repo", "type": "object", "properties": {"url": {}, "branch": {}},
                     "default": {"url": "u", "branch": "main"}}
                ],
                "workspaces": [{"name": "source"}, {"name": "cache", "optional": true}],
                "tasks": [{"name": "t", "taskRef": {"name": "cargo"}, "workspaces": [{"name": "source"}]}]
            }
        });
        match TektonObject::from_value(&doc).unwrap() {
            TektonObject::Pipeline(p) => p,
            _ => unreachable!(),
        }
    }

    fn source() -> Source {
        Source {
            repository: "https://github.com/keelson/keelson".into(),
            commit: "0123456789abcdef0123456789abcdef01234567".into(),
            target: "staging/eu".into(),
        }
    }

    #[test]
    fn builds_a_checked_run() {
        let run = RunBuilder::for_pipeline(&pipeline())
            .param("revision", "abc")
            .param_text("features", "a,b")
            .param_text("repo", "url=https://x,branch=dev")
            .workspace(WorkspaceBinding::empty_dir("source"))
            .timeouts(Some("1h".into()), Some("50m".into()), Some("10m".into()))
            .service_account("ci-bot")
            .source(&source())
            .build()
            .unwrap();
        let v = serde_json::to_value(&run).unwrap();
        assert_eq!(v["metadata"]["generateName"], "build-");
        assert_eq!(v["metadata"]["namespace"], "ci");
        assert_eq!(v["spec"]["pipelineRef"], json!({"name": "build"}));
        assert_eq!(
            v["spec"]["params"],
            json!([
                {"name": "revision", "value": "abc"},
                {"name": "features", "value": ["a", "b"]},
                {"name": "repo", "value": {"branch": "dev", "url": "https://x"}}
            ])
        );
        assert_eq!(
            v["spec"]["taskRunTemplate"],
            json!({"serviceAccountName": "ci-bot"})
        );
        assert_eq!(
            v["spec"]["timeouts"],
            json!({"pipeline": "1h", "tasks": "50m", "finally": "10m"})
        );
        let labels = &v["metadata"]["labels"];
        assert_eq!(labels[LABEL_REPOSITORY], "github.com.keelson.keelson");
        assert_eq!(labels[LABEL_COMMIT], source().commit);
        assert_eq!(labels[LABEL_TARGET], "staging.eu");
        assert_eq!(labels[LABEL_MANAGED_BY], "keelson");
        assert_eq!(
            v["metadata"]["annotations"][LABEL_REPOSITORY],
            "https://github.com/keelson/keelson"
        );
    }

    #[test]
    fn reports_every_problem_with_its_field() {
        let err = RunBuilder::for_pipeline(&pipeline())
            .param("revison", "abc")
            .param("features", "not-an-array")
            .param_text("profile", "debug")
            .param(
                "repo",
                BTreeMap::from([("url".to_string(), "u".to_string())]),
            )
            .workspace(WorkspaceBinding::empty_dir("sources"))
            .timeouts(Some("10m".into()), Some("20m".into()), None)
            .build()
            .unwrap_err();
        let text: Vec<String> = err.issues.iter().map(ToString::to_string).collect();
        let expect = [
            ".spec.params[0].name: the pipeline declares no param \"revison\"",
            ".spec.params[1].value: param \"features\" is declared array but given string",
            ".spec.params[2].value: \"debug\" is not one of dev, release",
            ".spec.params[3].value: object param \"repo\" misses key \"branch\"",
            ".spec.params: required param \"revision\" (no default) is not given",
            ".spec.workspaces[0].name: the pipeline declares no workspace \"sources\"",
            ".spec.workspaces: workspace \"source\" of the pipeline is not bound",
            ".spec.timeouts.tasks: 20m0s must not exceed timeouts.pipeline (10m0s)",
        ];
        for e in expect {
            assert!(
                text.iter().any(|t| t.starts_with(e)),
                "missing {e} in {text:#?}"
            );
        }
        assert_eq!(text.len(), expect.len(), "{text:#?}");
    }

    #[test]
    fn embedded_specs_are_validated_too() {
        let spec: PipelineSpec = serde_json::from_value(json!({
            "params": [{"name": "n", "type": "array"}],
            "tasks": [{"name": "Bad_Name", "taskSpec": {"steps": [{"name": "s", "image": "i"}]}}]
        }))
        .unwrap();
        let err = RunBuilder::for_spec(spec)
            .name("r")
            .namespace("ci")
            .build()
            .unwrap_err();
        let text = err.to_string();
        assert!(text.contains(".spec.pipelineSpec.tasks[0].name"), "{text}");
        assert!(text.contains("required param \"n\""), "{text}");
    }

    #[test]
    fn param_text_by_type() {
        assert_eq!(
            parse_text("[\"a,b\",\"c\"]", ParamType::Array).unwrap(),
            ParamValue::Array(vec!["a,b".into(), "c".into()])
        );
        assert_eq!(
            parse_text("", ParamType::Array).unwrap(),
            ParamValue::Array(vec![])
        );
        assert!(parse_text("k", ParamType::Object).is_err());
        assert_eq!(
            parse_text("a=b=c", ParamType::String).unwrap(),
            ParamValue::String("a=b=c".into())
        );
    }

    #[test]
    fn label_values_are_valid() {
        assert_eq!(
            label_value("git@github.com:org/repo.git"),
            "git.github.com.org.repo.git"
        );
        let long = format!("https://example.com/{}/repo", "x".repeat(80));
        let v = label_value(&long);
        assert!(v.len() <= 63 && v.ends_with("repo"), "{v}");
    }
}
