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
    Duration, FieldIssue, Param, ParamSpec, ParamType, ParamValue, Pipeline, PipelineRef,
    PipelineRun, PipelineSpec, Step, Task, TaskRef, TaskRun, TaskSpec, TektonObject,
};

use refs::is_param_name;

/// Tekton's default `timeouts.pipeline` (`default-timeout-minutes`: 60).
pub const DEFAULT_PIPELINE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3600);

/// Tasks and Pipelines known by name, so that references to them can be checked too
/// (params they require, workspaces they declare, results they produce).
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tasks: BTreeMap<String, TaskSpec>,
    pipelines: BTreeMap<String, PipelineSpec>,
}

impl Catalog {
    /// The Tasks and Pipelines among `objects`.
    pub fn from_objects<'a>(objects: impl IntoIterator<Item = &'a TektonObject>) -> Self {
        let mut catalog = Catalog::default();
        for object in objects {
            match object {
                TektonObject::Task(t) => {
                    if let Some(name) = &t.metadata.name {
                        catalog.tasks.insert(name.clone(), t.spec.clone());
                    }
                }
                TektonObject::Pipeline(p) => {
                    if let Some(name) = &p.metadata.name {
                        catalog.pipelines.insert(name.clone(), p.spec.clone());
                    }
                }
                _ => {}
            }
        }
        catalog
    }

    /// The Task a plain reference (by name, no resolver) names, if known.
    pub fn task(&self, r: &TaskRef) -> Option<&TaskSpec> {
        if r.resolver.is_some() || r.api_version.is_some() {
            return None;
        }
        if r.kind.as_deref().is_some_and(|k| k != "Task") {
            return None;
        }
        self.tasks.get(r.name.as_deref()?)
    }

    /// The Pipeline a plain reference names, if known.
    pub fn pipeline(&self, r: &PipelineRef) -> Option<&PipelineSpec> {
        if r.resolver.is_some() {
            return None;
        }
        self.pipelines.get(r.name.as_deref()?)
    }
}

static EMPTY: std::sync::LazyLock<Catalog> = std::sync::LazyLock::new(Catalog::default);

/// Validates any of the four kinds.
pub fn validate(object: &TektonObject) -> Vec<FieldIssue> {
    validate_in(object, &EMPTY)
}

/// Validates any of the four kinds, also checking references to the `catalog`'s objects.
pub fn validate_in(object: &TektonObject, catalog: &Catalog) -> Vec<FieldIssue> {
    let mut v = Issues::new(catalog);
    match object {
        TektonObject::Pipeline(p) => v.pipeline(p),
        TektonObject::Task(t) => v.task(t),
        TektonObject::PipelineRun(r) => v.pipeline_run(r),
        TektonObject::TaskRun(r) => v.task_run(r),
    }
    v.list
}

/// Validates a Pipeline object.
pub fn validate_pipeline(pipeline: &Pipeline) -> Vec<FieldIssue> {
    validate_in(&TektonObject::Pipeline(pipeline.clone()), &EMPTY)
}

/// Validates a Task object (steps may only use params the Task declares).
pub fn validate_task(task: &Task) -> Vec<FieldIssue> {
    validate_in(&TektonObject::Task(task.clone()), &EMPTY)
}

/// Validates a PipelineRun, with its embedded Pipeline if it has one.
pub fn validate_pipeline_run(run: &PipelineRun) -> Vec<FieldIssue> {
    validate_in(&TektonObject::PipelineRun(run.clone()), &EMPTY)
}

/// Validates a TaskRun, with its embedded Task if it has one.
pub fn validate_task_run(run: &TaskRun) -> Vec<FieldIssue> {
    validate_in(&TektonObject::TaskRun(run.clone()), &EMPTY)
}

impl Issues<'_> {
    fn pipeline(&mut self, pipeline: &Pipeline) {
        let v = self;
        v.object_name(pipeline.metadata.name.as_deref(), None);
        v.pipeline_spec(&pipeline.spec, ".spec", &[], &[]);
    }

    fn task(&mut self, task: &Task) {
        self.object_name(task.metadata.name.as_deref(), None);
        self.task_spec(&task.spec, ".spec", &[], &[]);
    }

    fn pipeline_run(&mut self, run: &PipelineRun) {
        self.object_name(
            run.metadata.name.as_deref(),
            run.metadata.generate_name.as_deref(),
        );
        self.pipeline_run_spec(&run.spec);
    }

    fn task_run(&mut self, run: &TaskRun) {
        let v = self;
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
                let passed: Vec<ParamSpec> =
                    spec.params.iter().flatten().map(declared_from).collect();
                // So do its workspaces.
                let bound: Vec<&str> = spec
                    .workspaces
                    .iter()
                    .flatten()
                    .map(|w| w.name.as_str())
                    .collect();
                v.task_spec(task, ".spec.taskSpec", &passed, &bound);
            }
            (Some(task_ref), None) => {
                if let Some(task) = v.catalog.task(task_ref) {
                    let passed = spec.params.as_deref().unwrap_or_default();
                    let bound: Vec<&str> = spec
                        .workspaces
                        .iter()
                        .flatten()
                        .map(|w| w.name.as_str())
                        .collect();
                    // Tekton's `default-task-run-workspace-binding` may bind a TaskRun's missing
                    // workspaces: only a pipeline task's are certain to be missing.
                    v.against_task(
                        task,
                        TaskUse {
                            task_ref,
                            passed,
                            fanned_out: &[],
                            bound: &bound,
                            workspaces_required: false,
                        },
                        ".spec",
                    );
                }
            }
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
    }
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

/// How a Task is used: by which reference, with which params and workspaces.
struct TaskUse<'a> {
    task_ref: &'a TaskRef,
    passed: &'a [Param],
    /// Names given through a matrix (one element per TaskRun).
    fanned_out: &'a [&'a str],
    bound: &'a [&'a str],
    /// Whether unbound workspaces are certain to be missing.
    workspaces_required: bool,
}

/// Issues found so far, and what references can be checked against.
struct Issues<'c> {
    list: Vec<FieldIssue>,
    catalog: &'c Catalog,
}

impl<'c> Issues<'c> {
    fn new(catalog: &'c Catalog) -> Self {
        Issues {
            list: Vec::new(),
            catalog,
        }
    }

    /// Params and workspaces given to a referenced Task against what it declares.
    fn against_task(&mut self, task: &TaskSpec, usage: TaskUse<'_>, path: &str) {
        let TaskUse {
            task_ref,
            passed,
            fanned_out,
            bound,
            workspaces_required,
        } = usage;
        let name = task_ref.name.as_deref().unwrap_or_default();
        for p in task.params.iter().flatten() {
            match passed.iter().find(|given| given.name == p.name) {
                // Matrix params fan out: each TaskRun gets one element.
                None if fanned_out.contains(&p.name.as_str()) => {}
                None if p.default.is_none() => self.push(
                    format!("{path}.params"),
                    format!(
                        "task {name:?} requires param {:?}, which is not given",
                        p.name
                    ),
                ),
                // A value holding a reference gets its type from what it refers to.
                Some(given)
                    if !given.value.strings().iter().any(|s| s.contains("$("))
                        && given.value.param_type() != p.effective_type() =>
                {
                    self.push(
                        format!("{path}.params"),
                        format!(
                            "task {name:?} declares param {:?} {} but it is given {}",
                            p.name,
                            p.effective_type(),
                            given.value.param_type()
                        ),
                    )
                }
                _ => {}
            }
        }
        let declared: Vec<_> = task.workspaces.iter().flatten().collect();
        for d in &declared {
            if workspaces_required
                && !d.optional.unwrap_or(false)
                && !bound.contains(&d.name.as_str())
            {
                self.push(
                    format!("{path}.workspaces"),
                    format!(
                        "task {name:?} needs workspace {:?}, which is not bound",
                        d.name
                    ),
                );
            }
        }
        for w in bound {
            if !declared.iter().any(|d| d.name == *w) {
                self.push(
                    format!("{path}.workspaces"),
                    format!("task {name:?} declares no workspace {w:?}"),
                );
            }
        }
    }

    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.list.push(FieldIssue {
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
