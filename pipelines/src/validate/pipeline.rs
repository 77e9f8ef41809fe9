//! Rules for pipeline specs: task names, references, `when`, the task graph, results.

use std::collections::{BTreeMap, BTreeSet};

use super::refs::{
    ResultRef, expressions, is_dns1123_label, is_result_name, param_ref, result_ref, status_ref,
};
use super::{Issues, PipelineContext, TaskUse, declared_from, declares};
use crate::model::{ParamSpec, PipelineSpec, PipelineTask, WhenExpression};

impl Issues<'_> {
    /// A pipeline spec; `extra_params` and `extra_workspaces` are available from outside
    /// (propagated from a run or an enclosing pipeline).
    pub(super) fn pipeline_spec(
        &mut self,
        spec: &PipelineSpec,
        path: &str,
        extra_params: &[ParamSpec],
        extra_workspaces: &[&str],
    ) {
        let tasks = spec.tasks();
        let finally = spec.finally();
        if tasks.is_empty() {
            self.push(
                format!("{path}.tasks"),
                "a pipeline needs at least one task",
            );
        }
        self.param_specs(spec.params(), &format!("{path}.params"));
        let declared: Vec<ParamSpec> = spec.params().iter().chain(extra_params).cloned().collect();

        // Names: DNS labels, unique across tasks and finally.
        let mut names = BTreeSet::new();
        for (section, list) in [("tasks", tasks), ("finally", finally)] {
            for (i, t) in list.iter().enumerate() {
                let at = format!("{path}.{section}[{i}].name");
                match t.name.as_deref() {
                    None | Some("") => self.push(at, "a pipeline task needs a name"),
                    Some(name) if !is_dns1123_label(name) => self.push(
                        at,
                        format!(
                            "invalid task name {name:?}: must be a DNS-1123 label \
                             (lowercase letters, digits and '-', at most 63)"
                        ),
                    ),
                    Some(name) if !names.insert(name) => {
                        self.push(at, format!("task name {name:?} is used more than once"))
                    }
                    _ => {}
                }
            }
        }

        let declared_workspaces: Vec<&str> = spec
            .workspaces
            .iter()
            .flatten()
            .map(|w| w.name.as_str())
            .collect();
        let mut seen = BTreeSet::new();
        for (i, w) in declared_workspaces.iter().enumerate() {
            if w.is_empty() {
                self.push(format!("{path}.workspaces[{i}].name"), "required");
            } else if !seen.insert(*w) {
                self.push(
                    format!("{path}.workspaces[{i}].name"),
                    format!("workspace {w:?} is declared more than once"),
                );
            }
        }

        let task_names: BTreeSet<&str> = tasks.iter().map(PipelineTask::name).collect();
        let finally_names: BTreeSet<&str> = finally.iter().map(PipelineTask::name).collect();
        // Results each inline task declares (None: unknown, e.g. a taskRef).
        let results: BTreeMap<&str, Option<BTreeSet<&str>>> = tasks
            .iter()
            .chain(finally)
            .map(|t| {
                let spec = match (&t.task_spec, &t.task_ref) {
                    (Some(embedded), _) => Some(&embedded.task),
                    (None, Some(r)) => self.catalog.task(r),
                    (None, None) => None,
                };
                let declared = spec.map(|s| {
                    s.results
                        .iter()
                        .flatten()
                        .map(|r| r.name.as_str())
                        .collect()
                });
                (t.name(), declared)
            })
            .collect();
        let mut workspaces = declared_workspaces.clone();
        workspaces.extend(extra_workspaces);
        let ctx = PipelineContext {
            params: &declared,
            workspaces: &workspaces,
            tasks: &task_names,
            finally: &finally_names,
            results: &results,
        };
        for (i, t) in tasks.iter().enumerate() {
            self.pipeline_task(t, &format!("{path}.tasks[{i}]"), &ctx, false);
        }
        for (i, t) in finally.iter().enumerate() {
            self.pipeline_task(t, &format!("{path}.finally[{i}]"), &ctx, true);
        }
        self.graph(tasks, path);

        for (i, r) in spec.results.iter().flatten().enumerate() {
            let at = format!("{path}.results[{i}]");
            if !is_result_name(&r.name) {
                self.push(
                    format!("{at}.name"),
                    format!("invalid result name {:?}", r.name),
                );
            }
            let exprs: Vec<&str> = r
                .value
                .strings()
                .into_iter()
                .flat_map(expressions)
                .collect();
            if exprs.is_empty() {
                self.push(
                    format!("{at}.value"),
                    "a pipeline result must reference a task result ($(tasks.<task>.results.<name>))",
                );
            }
            for e in exprs {
                if let Some(rr) = result_ref(e) {
                    let known = if rr.section == "finally" {
                        &finally_names
                    } else {
                        &task_names
                    };
                    self.result_exists(&rr, known, &results, &format!("{at}.value"));
                }
            }
        }
    }

    fn result_exists(
        &mut self,
        r: &ResultRef<'_>,
        known: &BTreeSet<&str>,
        results: &BTreeMap<&str, Option<BTreeSet<&str>>>,
        path: &str,
    ) {
        if !known.contains(r.task) {
            self.push(
                path,
                format!(
                    "$({}.{}.results.{}) refers to no task {:?}",
                    r.section, r.task, r.result, r.task
                ),
            );
        } else if let Some(Some(declared)) = results.get(r.task)
            && !declared.contains(r.result)
        {
            self.push(
                path,
                format!("task {:?} declares no result {:?}", r.task, r.result),
            );
        }
    }

    fn pipeline_task(
        &mut self,
        t: &PipelineTask,
        path: &str,
        ctx: &PipelineContext<'_>,
        is_finally: bool,
    ) {
        let kinds = [
            t.task_ref.is_some(),
            t.task_spec.is_some(),
            t.pipeline_ref.is_some(),
            t.pipeline_spec.is_some(),
        ]
        .into_iter()
        .filter(|x| *x)
        .count();
        if kinds != 1 {
            self.push(
                path,
                format!("expected exactly one of taskRef, taskSpec, pipelineRef or pipelineSpec, got {kinds}"),
            );
        }
        if let Some(r) = &t.task_ref
            && r.name.as_deref().unwrap_or_default().is_empty()
            && r.resolver.is_none()
        {
            self.push(
                format!("{path}.taskRef"),
                "a name or a resolver is required",
            );
        }
        if let Some(retries) = t.retries {
            if retries < 0 {
                self.push(format!("{path}.retries"), "must not be negative");
            }
            if retries > 0 && t.on_error.as_deref() == Some("continue") {
                self.push(
                    format!("{path}.onError"),
                    "onError \"continue\" cannot be combined with retries",
                );
            }
        }
        if let Some(on_error) = t.on_error.as_deref()
            && !matches!(on_error, "continue" | "stopAndFail")
            && !on_error.starts_with("$(")
        {
            self.push(
                format!("{path}.onError"),
                format!("invalid value {on_error:?}: expected continue or stopAndFail"),
            );
        }
        if let Some(timeout) = &t.timeout {
            self.duration(timeout, &format!("{path}.timeout"));
        }
        if is_finally && t.run_after.as_ref().is_some_and(|r| !r.is_empty()) {
            self.push(
                format!("{path}.runAfter"),
                "finally tasks cannot use runAfter",
            );
        }
        for (i, after) in t.run_after.iter().flatten().enumerate() {
            if !ctx.tasks.contains(after.as_str()) {
                self.push(
                    format!("{path}.runAfter[{i}]"),
                    format!("runAfter refers to no task {after:?}"),
                );
            } else if after == t.name() {
                self.push(
                    format!("{path}.runAfter[{i}]"),
                    "a task cannot run after itself",
                );
            }
        }
        self.params(t.params.as_deref(), &format!("{path}.params"));

        // Strings that may hold references: param values, matrix values, when expressions.
        let mut strings: Vec<(String, &str)> = Vec::new();
        for (i, p) in t.params.iter().flatten().enumerate() {
            for s in p.value.strings() {
                strings.push((format!("{path}.params[{i}].value"), s));
            }
        }
        if let Some(m) = &t.matrix {
            for (i, p) in m.params.iter().flatten().enumerate() {
                for s in p.value.strings() {
                    strings.push((format!("{path}.matrix.params[{i}].value"), s));
                }
            }
            for (i, inc) in m.include.iter().flatten().enumerate() {
                for (j, p) in inc.params.iter().flatten().enumerate() {
                    for s in p.value.strings() {
                        strings.push((format!("{path}.matrix.include[{i}].params[{j}].value"), s));
                    }
                }
            }
        }
        self.when(t.when.as_deref(), &format!("{path}.when"), &mut strings);

        for (at, s) in &strings {
            for e in expressions(s) {
                if let Some(r) = param_ref(e) {
                    if !declares(ctx.params, &r) {
                        self.push(at.clone(), format!("$({e}) refers to an undeclared param"));
                    }
                } else if let Some(r) = result_ref(e) {
                    if r.section == "finally" || ctx.finally.contains(r.task) {
                        self.push(
                            at.clone(),
                            format!("$({e}): results of finally tasks cannot be used by tasks"),
                        );
                    } else if r.task == t.name() {
                        self.push(
                            at.clone(),
                            format!("$({e}): a task cannot use its own result"),
                        );
                    } else {
                        self.result_exists(&r, ctx.tasks, ctx.results, at);
                    }
                } else if let Some(task) = status_ref(e) {
                    if !is_finally {
                        self.push(
                            at.clone(),
                            format!("$({e}): execution status is only available to finally tasks"),
                        );
                    } else if !ctx.tasks.contains(task) {
                        self.push(at.clone(), format!("$({e}) refers to no task {task:?}"));
                    }
                }
            }
        }

        for (i, w) in t.workspaces.iter().flatten().enumerate() {
            let used = w.workspace.as_deref().unwrap_or(&w.name);
            if !ctx.workspaces.contains(&used) {
                self.push(
                    format!("{path}.workspaces[{i}]"),
                    format!("the pipeline declares no workspace {used:?}"),
                );
            }
        }
        if let Some(task_ref) = &t.task_ref
            && let Some(task) = self.catalog.task(task_ref)
        {
            let passed = t.params.as_deref().unwrap_or_default();
            // Matrix params (and included combinations) are passed too, element by element.
            let fanned_out: Vec<&str> = t
                .matrix
                .iter()
                .flat_map(|m| {
                    m.params.iter().flatten().chain(
                        m.include
                            .iter()
                            .flatten()
                            .flat_map(|inc| inc.params.iter().flatten()),
                    )
                })
                .map(|p| p.name.as_str())
                .collect();
            let bound: Vec<&str> = t
                .workspaces
                .iter()
                .flatten()
                .map(|w| w.name.as_str())
                .collect();
            self.against_task(
                task,
                TaskUse {
                    task_ref,
                    passed,
                    fanned_out: &fanned_out,
                    bound: &bound,
                    workspaces_required: true,
                },
                path,
            );
        }
        if let Some(embedded) = &t.task_spec {
            let custom = embedded.api_version.is_some()
                || embedded.kind.as_deref().is_some_and(|k| k != "Task");
            if !custom {
                // An embedded task sees the pipeline's params and workspaces and the
                // params (matrix ones included) and workspaces its pipeline task passes.
                let mut params: Vec<ParamSpec> = ctx.params.to_vec();
                let passed = t
                    .params
                    .iter()
                    .flatten()
                    .chain(t.matrix.iter().flat_map(|m| m.params.iter().flatten()))
                    .chain(t.matrix.iter().flat_map(|m| {
                        m.include
                            .iter()
                            .flatten()
                            .flat_map(|inc| inc.params.iter().flatten())
                    }));
                params.extend(passed.map(declared_from));
                let mut workspaces: Vec<&str> = ctx.workspaces.to_vec();
                workspaces.extend(t.workspaces.iter().flatten().map(|w| w.name.as_str()));
                self.task_spec(
                    &embedded.task,
                    &format!("{path}.taskSpec"),
                    &params,
                    &workspaces,
                );
                let declared = embedded.task.workspaces.iter().flatten();
                for d in declared {
                    if !d.optional.unwrap_or(false)
                        && !t.workspaces.iter().flatten().any(|w| w.name == d.name)
                    {
                        self.push(
                            format!("{path}.workspaces"),
                            format!("workspace {:?} of the task is not bound", d.name),
                        );
                    }
                }
            }
        }
        if let Some(inner) = &t.pipeline_spec {
            self.pipeline_spec(
                inner,
                &format!("{path}.pipelineSpec"),
                ctx.params,
                ctx.workspaces,
            );
        }
    }

    fn when<'a>(
        &mut self,
        when: Option<&'a [WhenExpression]>,
        path: &str,
        strings: &mut Vec<(String, &'a str)>,
    ) {
        for (i, w) in when.unwrap_or_default().iter().enumerate() {
            let at = format!("{path}[{i}]");
            if let Some(cel) = &w.cel {
                if w.input.is_some() || w.operator.is_some() || w.values.is_some() {
                    self.push(
                        at.clone(),
                        "cel cannot be combined with input, operator or values",
                    );
                }
                strings.push((format!("{at}.cel"), cel));
                continue;
            }
            match w.operator.as_deref() {
                Some("in" | "notin") => {}
                Some(other) => self.push(
                    format!("{at}.operator"),
                    format!("invalid operator {other:?}: expected in or notin"),
                ),
                None => self.push(format!("{at}.operator"), "required"),
            }
            if w.values.as_ref().is_none_or(Vec::is_empty) {
                self.push(format!("{at}.values"), "at least one value is required");
            }
            match &w.input {
                Some(input) => strings.push((format!("{at}.input"), input)),
                None => self.push(format!("{at}.input"), "required"),
            }
            for v in w.values.iter().flatten() {
                strings.push((format!("{at}.values"), v));
            }
        }
    }

    /// `runAfter` and result references must form a DAG.
    fn graph(&mut self, tasks: &[PipelineTask], path: &str) {
        let mut edges: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for t in tasks {
            let deps = edges.entry(t.name()).or_default();
            for after in t.run_after.iter().flatten() {
                deps.insert(after.as_str());
            }
            let values = t.params.iter().flatten().flat_map(|p| p.value.strings());
            let whens = t
                .when
                .iter()
                .flatten()
                .flat_map(|w| w.input.iter().chain(w.values.iter().flatten()))
                .map(String::as_str);
            for s in values.chain(whens) {
                for e in expressions(s) {
                    if let Some(r) = result_ref(e)
                        && r.section == "tasks"
                    {
                        deps.insert(r.task);
                    }
                }
            }
        }
        // Depth-first search with colours; report the first cycle found.
        fn visit<'a>(
            node: &'a str,
            edges: &BTreeMap<&'a str, BTreeSet<&'a str>>,
            state: &mut BTreeMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
        ) -> Option<Vec<&'a str>> {
            match state.get(node) {
                Some(2) => return None,
                Some(1) => {
                    let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                    let mut cycle = stack[start..].to_vec();
                    cycle.push(node);
                    return Some(cycle);
                }
                _ => {}
            }
            state.insert(node, 1);
            stack.push(node);
            for dep in edges.get(node).into_iter().flatten() {
                if edges.contains_key(dep)
                    && let Some(c) = visit(dep, edges, state, stack)
                {
                    return Some(c);
                }
            }
            stack.pop();
            state.insert(node, 2);
            None
        }
        let mut state = BTreeMap::new();
        for node in edges.keys() {
            if let Some(cycle) = visit(node, &edges, &mut state, &mut Vec::new()) {
                self.push(
                    format!("{path}.tasks"),
                    format!("tasks form a cycle: {}", cycle.join(" -> ")),
                );
                return;
            }
        }
    }
}
