//! Rules for task specs: steps, params, results, workspaces and what steps reference.

use std::collections::BTreeSet;

use super::refs::{
    expressions, is_dns1123_label, is_result_name, own_result_ref, param_ref, workspace_ref,
};
use super::{Issues, declares, step_strings};
use crate::model::{ParamSpec, TaskSpec};

impl Issues<'_> {
    /// A task spec; `extra_params` and `extra_workspaces` are available from outside
    /// (propagated from a pipeline, a pipeline task or a run).
    pub(super) fn task_spec(
        &mut self,
        spec: &TaskSpec,
        path: &str,
        extra_params: &[ParamSpec],
        extra_workspaces: &[&str],
    ) {
        let steps = spec.steps();
        if steps.is_empty() {
            self.push(format!("{path}.steps"), "a task needs at least one step");
        }
        let declared = spec.params.as_deref().unwrap_or_default();
        self.param_specs(declared, &format!("{path}.params"));
        let mut names = BTreeSet::new();
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{path}.steps[{i}]");
            if let Some(name) = step.name.as_deref().filter(|n| !n.is_empty()) {
                if !is_dns1123_label(name) {
                    self.push(
                        format!("{at}.name"),
                        format!("invalid step name {name:?}: must be a DNS-1123 label"),
                    );
                } else if !names.insert(name) {
                    self.push(
                        format!("{at}.name"),
                        format!("step name {name:?} is used more than once"),
                    );
                }
            }
            if step.image.is_none()
                && step.ref_.is_none()
                && spec
                    .step_template
                    .as_ref()
                    .is_none_or(|t| t.image.is_none())
            {
                self.push(
                    format!("{at}.image"),
                    "required (unless the step uses a StepAction ref)",
                );
            }
            if step.script.is_some() && step.command.is_some() {
                self.push(
                    format!("{at}.script"),
                    "script cannot be used together with command",
                );
            }
            if let Some(on_error) = step.on_error.as_deref()
                && !matches!(on_error, "continue" | "stopAndFail")
                && !on_error.starts_with("$(")
            {
                self.push(
                    format!("{at}.onError"),
                    format!("invalid value {on_error:?}: expected continue or stopAndFail"),
                );
            }
            if let Some(timeout) = &step.timeout {
                self.duration(timeout, &format!("{at}.timeout"));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, r) in spec.results.iter().flatten().enumerate() {
            if !is_result_name(&r.name) {
                self.push(
                    format!("{path}.results[{i}].name"),
                    format!("invalid result name {:?}", r.name),
                );
            } else if !seen.insert(r.name.as_str()) {
                self.push(
                    format!("{path}.results[{i}].name"),
                    format!("result {:?} is declared more than once", r.name),
                );
            }
        }
        let workspaces: BTreeSet<&str> = spec
            .workspaces
            .iter()
            .flatten()
            .map(|w| w.name.as_str())
            .chain(extra_workspaces.iter().copied())
            .collect();
        let mut seen = BTreeSet::new();
        for (i, w) in spec.workspaces.iter().flatten().enumerate() {
            if !seen.insert(w.name.as_str()) {
                self.push(
                    format!("{path}.workspaces[{i}].name"),
                    format!("workspace {:?} is declared more than once", w.name),
                );
            }
        }
        let results: BTreeSet<&str> = spec
            .results
            .iter()
            .flatten()
            .map(|r| r.name.as_str())
            .collect();
        let all_params: Vec<ParamSpec> = declared.iter().chain(extra_params).cloned().collect();
        for (i, step) in steps.iter().enumerate() {
            // A StepAction declares its own params; its step's strings are checked there.
            if step.ref_.is_some() {
                continue;
            }
            for (field, s) in step_strings(step) {
                let at = format!("{path}.steps[{i}].{field}");
                for e in expressions(s) {
                    if let Some(r) = param_ref(e) {
                        if !declares(&all_params, &r) {
                            self.push(at.clone(), format!("$({e}) refers to an undeclared param"));
                        }
                    } else if let Some(w) = workspace_ref(e) {
                        if !workspaces.contains(w) {
                            self.push(
                                at.clone(),
                                format!("$({e}) refers to an undeclared workspace"),
                            );
                        }
                    } else if let Some(r) = own_result_ref(e)
                        && is_result_name(r)
                        && !results.contains(r)
                    {
                        self.push(at.clone(), format!("$({e}) refers to an undeclared result"));
                    }
                }
            }
        }
    }
}
