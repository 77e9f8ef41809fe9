//! Rules for runs: one of ref/spec, params against declarations, timeouts, workspaces.

use std::collections::BTreeSet;

use super::refs::is_param_name;
use super::{DEFAULT_PIPELINE_TIMEOUT, Issues, declared_from};
use crate::model::{
    Param, ParamSpec, ParamType, PipelineRunSpec, PipelineSpec, PipelineTask, WorkspaceBinding,
    spec_status,
};

impl Issues<'_> {
    pub(super) fn pipeline_run_spec(&mut self, spec: &PipelineRunSpec) {
        match (&spec.pipeline_ref, &spec.pipeline_spec) {
            (None, None) => self.push(
                ".spec",
                "expected exactly one of pipelineRef or pipelineSpec, got none",
            ),
            (Some(_), Some(_)) => self.push(
                ".spec",
                "expected exactly one of pipelineRef or pipelineSpec, got both",
            ),
            (Some(r), None) => {
                if r.name.as_deref().unwrap_or_default().is_empty() && r.resolver.is_none() {
                    self.push(".spec.pipelineRef", "a name or a resolver is required");
                }
                if let Some(pipeline) = self.catalog.pipeline(r) {
                    self.run_params_against(
                        spec.params.as_deref().unwrap_or_default(),
                        pipeline.params(),
                        ".spec.params",
                    );
                    self.run_workspaces_against(spec, pipeline);
                }
            }
            (None, Some(pipeline)) => {
                // Params of the run propagate into an embedded spec.
                let passed: Vec<ParamSpec> =
                    spec.params.iter().flatten().map(declared_from).collect();
                let bound: Vec<&str> = spec
                    .workspaces
                    .iter()
                    .flatten()
                    .map(|w| w.name.as_str())
                    .collect();
                self.pipeline_spec(pipeline, ".spec.pipelineSpec", &passed, &bound);
                self.run_params_against(
                    spec.params.as_deref().unwrap_or_default(),
                    pipeline.params(),
                    ".spec.params",
                );
            }
        }
        self.params(spec.params.as_deref(), ".spec.params");
        for (i, p) in spec.params.iter().flatten().enumerate() {
            if !is_param_name(&p.name, p.value.param_type() == ParamType::Object) {
                self.push(
                    format!(".spec.params[{i}].name"),
                    format!("invalid param name {:?}", p.name),
                );
            }
        }
        if let Some(status) = spec.status.as_deref()
            && !matches!(
                status,
                spec_status::CANCELLED
                    | spec_status::CANCELLED_RUN_FINALLY
                    | spec_status::STOPPED_RUN_FINALLY
                    | spec_status::PENDING
            )
        {
            self.push(
                ".spec.status",
                format!(
                    "invalid value {status:?}: expected Cancelled, CancelledRunFinally, \
                     StoppedRunFinally or PipelineRunPending"
                ),
            );
        }
        self.timeouts(spec);
        self.workspace_bindings(spec.workspaces.as_deref(), ".spec.workspaces");
        if let Some(pipeline) = &spec.pipeline_spec {
            self.run_workspaces_against(spec, pipeline);
        }
        let mut seen = BTreeSet::new();
        let task_names: Option<BTreeSet<&str>> = spec.pipeline_spec.as_ref().map(|p| {
            p.tasks()
                .iter()
                .chain(p.finally())
                .map(PipelineTask::name)
                .collect()
        });
        for (i, trs) in spec.task_run_specs.iter().flatten().enumerate() {
            let at = format!(".spec.taskRunSpecs[{i}]");
            let name = trs.pipeline_task_name.as_deref().unwrap_or_default();
            if name.is_empty() {
                self.push(format!("{at}.pipelineTaskName"), "required");
            } else if !seen.insert(name) {
                self.push(
                    format!("{at}.pipelineTaskName"),
                    format!("{name:?} appears more than once"),
                );
            } else if let Some(names) = &task_names
                && !names.contains(name)
            {
                self.push(
                    format!("{at}.pipelineTaskName"),
                    format!("the pipeline has no task {name:?}"),
                );
            }
        }
    }

    /// `timeouts`: each ≥ 0; tasks, finally and their sum within the pipeline's timeout
    /// (60m when absent); a taskRunSpec's timeout within tasks (or pipeline).
    fn timeouts(&mut self, spec: &PipelineRunSpec) {
        let Some(t) = &spec.timeouts else {
            self.task_run_spec_timeouts(spec, None, None);
            return;
        };
        let pipeline = t
            .pipeline
            .as_ref()
            .and_then(|d| self.duration(d, ".spec.timeouts.pipeline"));
        let tasks = t
            .tasks
            .as_ref()
            .and_then(|d| self.duration(d, ".spec.timeouts.tasks"));
        let finally = t
            .finally
            .as_ref()
            .and_then(|d| self.duration(d, ".spec.timeouts.finally"));
        if t.pipeline.is_some() && pipeline.is_none() {
            return;
        }
        let limit = pipeline.unwrap_or(DEFAULT_PIPELINE_TIMEOUT);
        let what = if pipeline.is_some() {
            "timeouts.pipeline"
        } else {
            "the default pipeline timeout (1h)"
        };
        let zero = std::time::Duration::ZERO;
        for (field, value) in [("tasks", tasks), ("finally", finally)] {
            let Some(value) = value else { continue };
            if limit != zero && value == zero {
                self.push(
                    format!(".spec.timeouts.{field}"),
                    format!("0 (no timeout) must not exceed {what} ({})", go(limit)),
                );
            } else if limit != zero && value > limit {
                self.push(
                    format!(".spec.timeouts.{field}"),
                    format!("{} must not exceed {what} ({})", go(value), go(limit)),
                );
            }
        }
        if let (Some(a), Some(b)) = (tasks, finally)
            && a + b > limit
        {
            self.push(
                ".spec.timeouts",
                format!(
                    "tasks + finally ({}) must not exceed {what} ({})",
                    go(a + b),
                    go(limit)
                ),
            );
        }
        self.task_run_spec_timeouts(spec, tasks, pipeline);
    }

    fn task_run_spec_timeouts(
        &mut self,
        spec: &PipelineRunSpec,
        tasks: Option<std::time::Duration>,
        pipeline: Option<std::time::Duration>,
    ) {
        let (limit, what) = match (tasks, pipeline) {
            (Some(t), _) => (t, "timeouts.tasks"),
            (None, Some(p)) => (p, "timeouts.pipeline"),
            (None, None) => (
                DEFAULT_PIPELINE_TIMEOUT,
                "the default pipeline timeout (1h)",
            ),
        };
        for (i, trs) in spec.task_run_specs.iter().flatten().enumerate() {
            let path = format!(".spec.taskRunSpecs[{i}].timeout");
            if let Some(d) = trs.timeout.as_ref().and_then(|d| self.duration(d, &path))
                && limit != std::time::Duration::ZERO
                && d > limit
            {
                self.push(
                    path,
                    format!("{} must not exceed {what} ({})", go(d), go(limit)),
                );
            }
        }
    }

    /// Run params against the Pipeline's declarations: types match, required ones given.
    fn run_params_against(&mut self, params: &[Param], declared: &[ParamSpec], path: &str) {
        for (i, p) in params.iter().enumerate() {
            if let Some(spec) = declared.iter().find(|d| d.name == p.name)
                && spec.effective_type() != p.value.param_type()
            {
                self.push(
                    format!("{path}[{i}].value"),
                    format!(
                        "param {:?} is declared {} but given {}",
                        p.name,
                        spec.effective_type(),
                        p.value.param_type()
                    ),
                );
            }
        }
        for spec in declared {
            if spec.default.is_none() && !params.iter().any(|p| p.name == spec.name) {
                self.push(
                    path,
                    format!("required param {:?} (no default) is not given", spec.name),
                );
            }
        }
    }

    pub(super) fn workspace_bindings(&mut self, bindings: Option<&[WorkspaceBinding]>, path: &str) {
        let mut seen = BTreeSet::new();
        for (i, w) in bindings.unwrap_or_default().iter().enumerate() {
            let at = format!("{path}[{i}]");
            if w.name.is_empty() {
                self.push(format!("{at}.name"), "required");
            } else if !seen.insert(w.name.as_str()) {
                self.push(
                    format!("{at}.name"),
                    format!("workspace {:?} is bound more than once", w.name),
                );
            }
            if w.source_count() != 1 {
                self.push(
                    at,
                    format!(
                        "expected exactly one volume source (persistentVolumeClaim, \
                         volumeClaimTemplate, emptyDir, configMap, secret, projected, csi), \
                         got {}",
                        w.source_count()
                    ),
                );
            }
        }
    }

    fn run_workspaces_against(&mut self, spec: &PipelineRunSpec, pipeline: &PipelineSpec) {
        let declared: Vec<_> = pipeline.workspaces.iter().flatten().collect();
        let bound: Vec<&str> = spec
            .workspaces
            .iter()
            .flatten()
            .map(|w| w.name.as_str())
            .collect();
        for d in &declared {
            if !d.optional.unwrap_or(false) && !bound.contains(&d.name.as_str()) {
                self.push(
                    ".spec.workspaces",
                    format!("workspace {:?} of the pipeline is not bound", d.name),
                );
            }
        }
        // Bindings the embedded spec does not declare are propagated to its tasks.
    }
}

/// A duration the way Go (and Tekton's messages) write it.
fn go(d: std::time::Duration) -> String {
    crate::model::Duration::from_std(d).0
}
