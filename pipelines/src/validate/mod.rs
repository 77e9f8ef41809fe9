//! The rules Tekton's admission webhook (and, for a few, its reconciler) enforces that
//! matter before Keelson sends anything: name syntax, duplicates, references to
//! undeclared params, results and workspaces, `runAfter` cycles, timeouts ordering.
//!
//! Every issue names the field by its path, so a caller can add file and object.

mod pipeline;
pub mod refs;
mod run;
mod task;

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{
    Duration, FieldIssue, Param, ParamSpec, ParamType, ParamValue, Pipeline, PipelineRun, Step,
    Task, TaskRun, TektonObject,
};

use refs::is_param_name;

/// Tekton's default `timeouts.pipeline` (`default-timeout-minutes`: 60).
pub const DEFAULT_PIPELINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Validates any of the four kinds.
pub fn validate(object: &TektonObject) -> Vec<FieldIssue> {
    match object {
        TektonObject::Pipeline(p) => validate_pipeline(p),
        TektonObject::Task(t) => validate_task(t),
        TektonObject::PipelineRun(r) => validate_pipeline_run(r),
        TektonObject::TaskRun(r) => validate_task_run(r),
    }
}

/// Validates a Pipeline object.
pub fn validate_pipeline(pipeline: &Pipeline) -> Vec<FieldIssue> {
    let mut v = Issues::default();
    v.object_name(pipeline.metadata.name.as_deref(), None);
    v.pipeline_spec(&pipeline.spec, ".spec", &[], &[]);
    v.0
}

/// Validates a Task object (steps may only use params the Task declares).
pub fn validate_task(task: &Task) -> Vec<FieldIssue> {
    let mut v = Issues::default();
    v.object_name(task.metadata.name.as_deref(), None);
    v.task_spec(&task.spec, ".spec", &[], &[]);
    v.0
}

/// Validates a PipelineRun, with its embedded Pipeline if it has one.
pub fn validate_pipeline_run(run: &PipelineRun) -> Vec<FieldIssue> {
    let mut v = Issues::default();
    v.object_name(
        run.metadata.name.as_deref(),
        run.metadata.generate_name.as_deref(),
    );
    v.pipeline_run_spec(&run.spec);
    v.0
}

/// Validates a TaskRun, with its embedded Task if it has one.
pub fn validate_task_run(run: &TaskRun) -> Vec<FieldIssue> {
    let mut v = Issues::default();
    v.object_name(
        run.metadata.name.as_deref(),
        run.metadata.generate_name.as_deref(),
    );
    let spec = &run.spec;
    match (&spec.task_ref, &spec.task_spec) {
        (None, None) => v.push(
            ".spec",
            "expected exactly one of taskRef or taskSpec, got none",
        ),
        (Some(_), Some(_)) => v.push(
            ".spec",
            "expected exactly one of taskRef or taskSpec, got both",
        ),
        (None, Some(task)) => {
            // Params of the run propagate into an embedded spec.
            let passed: Vec<ParamSpec> = spec.params.iter().flatten().map(declared_from).collect();
            // So do its workspaces.
            let bound: Vec<&str> = spec
                .workspaces
                .iter()
                .flatten()
                .map(|w| w.name.as_str())
                .collect();
            v.task_spec(task, ".spec.taskSpec", &passed, &bound);
        }
        (Some(_), None) => {}
    }
    v.params(spec.params.as_deref(), ".spec.params");
    if let Some(timeout) = &spec.timeout {
        v.duration(timeout, ".spec.timeout");
    }
    if let Some(status) = spec.status.as_deref()
        && !matches!(status, "TaskRunCancelled" | "TaskRunPending")
    {
        v.push(
            ".spec.status",
            format!("invalid value {status:?}: expected TaskRunCancelled or TaskRunPending"),
        );
    }
    if spec.retries.is_some_and(|r| r < 0) {
        v.push(".spec.retries", "must not be negative");
    }
    v.workspace_bindings(spec.workspaces.as_deref(), ".spec.workspaces");
    v.0
}

/// A param declaration standing for a param passed to an embedded spec.
fn declared_from(param: &Param) -> ParamSpec {
    ParamSpec {
        name: param.name.clone(),
        type_: Some(param.value.param_type()),
        description: None,
        properties: None,
        default: None,
        enum_: None,
        extra: Default::default(),
    }
}

#[derive(Default)]
struct Issues(Vec<FieldIssue>);

impl Issues {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldIssue {
            path: path.into(),
            message: message.into(),
        });
    }

    fn object_name(&mut self, name: Option<&str>, generate_name: Option<&str>) {
        match (name, generate_name) {
            (None | Some(""), None | Some("")) => {
                self.push(".metadata", "either name or generateName is required")
            }
            (Some(name), _) if name.len() > 63 => self.push(
                ".metadata.name",
                format!("{name:?} is longer than 63 characters (Tekton uses it in labels)"),
            ),
            _ => {}
        }
    }

    fn duration(&mut self, d: &Duration, path: &str) -> Option<std::time::Duration> {
        match d.parse() {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(path, e.to_string());
                None
            }
        }
    }

    /// Params passed (to a run or a task): names unique.
    fn params(&mut self, params: Option<&[Param]>, path: &str) {
        let mut seen = BTreeSet::new();
        for (i, p) in params.unwrap_or_default().iter().enumerate() {
            if !seen.insert(p.name.as_str()) {
                self.push(
                    format!("{path}[{i}].name"),
                    format!("param {:?} appears more than once", p.name),
                );
            }
        }
    }

    /// Param declarations: syntax, duplicates, default type, object properties.
    fn param_specs(&mut self, specs: &[ParamSpec], path: &str) {
        let mut seen = BTreeSet::new();
        for (i, p) in specs.iter().enumerate() {
            let at = format!("{path}[{i}]");
            let ty = p.effective_type();
            if !is_param_name(&p.name, ty == ParamType::Object) {
                let rule = if ty == ParamType::Object {
                    "^[_a-zA-Z][_a-zA-Z0-9-]*$"
                } else {
                    "^[_a-zA-Z][_a-zA-Z0-9.-]*$"
                };
                self.push(
                    format!("{at}.name"),
                    format!("invalid param name {:?}: must match {rule}", p.name),
                );
            }
            if !seen.insert(p.name.as_str()) {
                self.push(
                    format!("{at}.name"),
                    format!("param {:?} is declared more than once", p.name),
                );
            }
            if let (Some(declared), Some(default)) = (p.type_, &p.default)
                && default.param_type() != declared
            {
                self.push(
                    format!("{at}.default"),
                    format!(
                        "default is of type {} but the param is declared {declared}",
                        default.param_type()
                    ),
                );
            }
            if ty == ParamType::Object && p.properties.is_none() {
                self.push(
                    format!("{at}.properties"),
                    "an object param must declare its properties",
                );
            }
            if let Some(values) = &p.enum_ {
                if ty != ParamType::String {
                    self.push(
                        format!("{at}.enum"),
                        "enum is only allowed on string params",
                    );
                }
                if let Some(default) = p.default.as_ref().and_then(ParamValue::as_text)
                    && !default.is_empty()
                    && !values.iter().any(|v| *v == default)
                {
                    self.push(
                        format!("{at}.default"),
                        format!("default {default:?} is not one of the enum values"),
                    );
                }
            }
        }
    }
}

struct PipelineContext<'a> {
    params: &'a [ParamSpec],
    workspaces: &'a [&'a str],
    tasks: &'a BTreeSet<&'a str>,
    finally: &'a BTreeSet<&'a str>,
    results: &'a BTreeMap<&'a str, Option<BTreeSet<&'a str>>>,
}

/// Whether a `$(params…)` reference names a declared param (or a key of an object one).
fn declares(params: &[ParamSpec], r: &refs::ParamRef<'_>) -> bool {
    if params.iter().any(|p| p.name == r.path) {
        return true;
    }
    if r.bracketed {
        return false;
    }
    let Some((head, key)) = r.path.split_once('.') else {
        return false;
    };
    params.iter().any(|p| {
        p.name == head
            && p.effective_type() == ParamType::Object
            && p.properties
                .as_ref()
                .is_none_or(|props| props.contains_key(key))
    })
}

/// The strings of a step where Tekton substitutes variables.
fn step_strings(step: &Step) -> Vec<(String, &str)> {
    let mut out: Vec<(String, &str)> = Vec::new();
    if let Some(s) = &step.image {
        out.push(("image".into(), s));
    }
    if let Some(s) = &step.script {
        out.push(("script".into(), s));
    }
    if let Some(s) = &step.working_dir {
        out.push(("workingDir".into(), s));
    }
    for (i, s) in step.command.iter().flatten().enumerate() {
        out.push((format!("command[{i}]"), s));
    }
    for (i, s) in step.args.iter().flatten().enumerate() {
        out.push((format!("args[{i}]"), s));
    }
    for (i, e) in step.env.iter().flatten().enumerate() {
        if let Some(v) = &e.value {
            out.push((format!("env[{i}].value"), v));
        }
    }
    out
}

#[cfg(test)]
mod tests;
