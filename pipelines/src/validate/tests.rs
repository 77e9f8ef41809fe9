//! Each rule fires on a minimal bad object, naming the field.

use serde_json::{Value, json};

use super::validate;
use crate::model::TektonObject;

fn issues(doc: Value) -> Vec<String> {
    let object = TektonObject::from_value(&doc).unwrap();
    validate(&object)
        .into_iter()
        .map(|i| i.to_string())
        .collect()
}

fn pipeline(spec: Value) -> Value {
    json!({"apiVersion": "tekton.dev/v1", "kind": "Pipeline", "metadata": {"name": "p"}, "spec": spec})
}

fn step() -> Value {
    json!({"name": "s", "image": "busybox", "script": "true"})
}

fn inline(name: &str) -> Value {
    json!({"name": name, "taskSpec": {"steps": [step()]}})
}

fn run(spec: Value) -> Value {
    json!({"apiVersion": "tekton.dev/v1", "kind": "PipelineRun", "metadata": {"generateName": "r-"}, "spec": spec})
}

/// (document, expected path, expected words in the message)
fn cases() -> Vec<(Value, &'static str, &'static str)> {
    vec![
        (
            pipeline(json!({"tasks": []})),
            ".spec.tasks",
            "at least one task",
        ),
        (
            pipeline(json!({"tasks": [inline("Build")]})),
            ".spec.tasks[0].name",
            "DNS-1123",
        ),
        (
            pipeline(json!({"tasks": [inline("a"), inline("a")]})),
            ".spec.tasks[1].name",
            "more than once",
        ),
        (
            pipeline(json!({"tasks": [inline("a")], "finally": [inline("a")]})),
            ".spec.finally[0].name",
            "more than once",
        ),
        (
            pipeline(json!({"tasks": [{"name": "a"}]})),
            ".spec.tasks[0]",
            "exactly one of taskRef",
        ),
        (
            pipeline(json!({"params": [{"name": "1bad"}], "tasks": [inline("a")]})),
            ".spec.params[0].name",
            "invalid param name",
        ),
        (
            pipeline(json!({"params": [{"name": "x"}, {"name": "x"}], "tasks": [inline("a")]})),
            ".spec.params[1].name",
            "declared more than once",
        ),
        (
            pipeline(
                json!({"params": [{"name": "x", "type": "array", "default": "s"}], "tasks": [inline("a")]}),
            ),
            ".spec.params[0].default",
            "declared array",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "params": [{"name": "p", "value": "$(params.missing)"}]}]}),
            ),
            ".spec.tasks[0].params[0].value",
            "undeclared param",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "params": [{"name": "p", "value": "1"}, {"name": "p", "value": "2"}]}]}),
            ),
            ".spec.tasks[0].params[1].name",
            "more than once",
        ),
        (
            pipeline(
                json!({"tasks": [inline("a"), {"name": "b", "taskRef": {"name": "t"}, "params": [{"name": "p", "value": "$(tasks.nope.results.r)"}]}]}),
            ),
            ".spec.tasks[1].params[0].value",
            "refers to no task",
        ),
        (
            pipeline(
                json!({"tasks": [inline("a"), {"name": "b", "taskRef": {"name": "t"}, "params": [{"name": "p", "value": "$(tasks.a.results.r)"}]}]}),
            ),
            ".spec.tasks[1].params[0].value",
            "declares no result",
        ),
        (
            pipeline(
                json!({"tasks": [inline("a")], "results": [{"name": "r", "value": "$(tasks.zz.results.r)"}]}),
            ),
            ".spec.results[0].value",
            "refers to no task",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "workspaces": [{"name": "src", "workspace": "source"}]}]}),
            ),
            ".spec.tasks[0].workspaces[0]",
            "declares no workspace",
        ),
        (
            pipeline(json!({"workspaces": [{"name": "w"}, {"name": "w"}], "tasks": [inline("a")]})),
            ".spec.workspaces[1].name",
            "declared more than once",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "runAfter": ["b"]}, {"name": "b", "taskRef": {"name": "t"}, "runAfter": ["a"]}]}),
            ),
            ".spec.tasks",
            "cycle",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "runAfter": ["ghost"]}]}),
            ),
            ".spec.tasks[0].runAfter[0]",
            "no task",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "when": [{"input": "x", "operator": "equals", "values": ["y"]}]}]}),
            ),
            ".spec.tasks[0].when[0].operator",
            "in or notin",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "retries": 2, "onError": "continue"}]}),
            ),
            ".spec.tasks[0].onError",
            "retries",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskRef": {"name": "t"}, "timeout": "ten minutes"}]}),
            ),
            ".spec.tasks[0].timeout",
            "invalid duration",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskSpec": {"steps": [{"name": "s", "image": "i", "script": "echo $(params.nope)"}]}}]}),
            ),
            ".spec.tasks[0].taskSpec.steps[0].script",
            "undeclared param",
        ),
        (
            pipeline(
                json!({"tasks": [{"name": "a", "taskSpec": {"steps": [{"name": "s", "image": "i", "script": "ls $(workspaces.src.path)"}]}}]}),
            ),
            ".spec.tasks[0].taskSpec.steps[0].script",
            "undeclared workspace",
        ),
        (
            json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": [
                {"name": "s", "image": "i", "script": "x", "command": ["sh"]},
                {"name": "s", "image": "i"}
            ]}}),
            ".spec.steps[1].name",
            "more than once",
        ),
        (
            json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": [
                {"name": "s", "image": "i", "script": "x", "command": ["sh"]}
            ]}}),
            ".spec.steps[0].script",
            "command",
        ),
        (
            json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": [{"name": "s"}]}}),
            ".spec.steps[0].image",
            "required",
        ),
        (
            json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "t"}, "spec": {"steps": [step()], "results": [{"name": "bad-"}]}}),
            ".spec.results[0].name",
            "invalid result name",
        ),
        (run(json!({})), ".spec", "got none"),
        (
            run(json!({"pipelineRef": {"name": "p"}, "pipelineSpec": {"tasks": [inline("a")]}})),
            ".spec",
            "got both",
        ),
        (
            run(json!({"pipelineRef": {"name": "p"}, "status": "Stopped"})),
            ".spec.status",
            "CancelledRunFinally",
        ),
        (
            run(
                json!({"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "1h", "tasks": "50m", "finally": "20m"}}),
            ),
            ".spec.timeouts",
            "tasks + finally",
        ),
        (
            run(
                json!({"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "10m", "tasks": "20m"}}),
            ),
            ".spec.timeouts.tasks",
            "must not exceed timeouts.pipeline",
        ),
        (
            run(json!({"pipelineRef": {"name": "p"}, "timeouts": {"tasks": "2h"}})),
            ".spec.timeouts.tasks",
            "default pipeline timeout",
        ),
        (
            run(json!({"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "-1s"}})),
            ".spec.timeouts.pipeline",
            "negative",
        ),
        (
            run(
                json!({"pipelineRef": {"name": "p"}, "timeouts": {"tasks": "10m"}, "taskRunSpecs": [{"pipelineTaskName": "a", "timeout": "20m"}]}),
            ),
            ".spec.taskRunSpecs[0].timeout",
            "timeouts.tasks",
        ),
        (
            run(
                json!({"pipelineRef": {"name": "p"}, "params": [{"name": "a", "value": "1"}, {"name": "a", "value": "2"}]}),
            ),
            ".spec.params[1].name",
            "more than once",
        ),
        (
            run(json!({"pipelineRef": {"name": "p"}, "workspaces": [{"name": "w"}]})),
            ".spec.workspaces[0]",
            "exactly one volume source",
        ),
        (
            run(json!({"pipelineSpec": {"params": [{"name": "rev"}], "tasks": [inline("a")]}})),
            ".spec.params",
            "required param \"rev\"",
        ),
        (
            run(
                json!({"pipelineSpec": {"params": [{"name": "list", "type": "array"}], "tasks": [inline("a")]}, "params": [{"name": "list", "value": "x"}]}),
            ),
            ".spec.params[0].value",
            "declared array but given string",
        ),
        (
            run(json!({"pipelineSpec": {"workspaces": [{"name": "src"}], "tasks": [inline("a")]}})),
            ".spec.workspaces",
            "not bound",
        ),
        (
            run(
                json!({"pipelineSpec": {"tasks": [inline("a")]}, "taskRunSpecs": [{"pipelineTaskName": "b"}]}),
            ),
            ".spec.taskRunSpecs[0].pipelineTaskName",
            "no task",
        ),
        (
            json!({"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "metadata": {"name": "tr"}, "spec": {}}),
            ".spec",
            "got none",
        ),
    ]
}

#[test]
fn every_rule_names_its_field() {
    for (doc, path, words) in cases() {
        let found = issues(doc.clone());
        assert!(
            found
                .iter()
                .any(|i| i.starts_with(&format!("{path}: ")) && i.contains(words)),
            "expected `{path}: …{words}…` for\n{doc:#}\ngot {found:#?}"
        );
    }
}

#[test]
fn good_objects_have_no_issues() {
    let good = [
        pipeline(json!({
            "params": [{"name": "rev", "default": "main"}, {"name": "obj", "type": "object", "properties": {"k": {}}}],
            "workspaces": [{"name": "src"}],
            "tasks": [
                {"name": "clone", "taskSpec": {"workspaces": [{"name": "out"}], "results": [{"name": "commit"}],
                    "steps": [{"name": "s", "image": "i", "script": "echo $(params.rev) $(params.obj.k) > $(results.commit.path); ls $(workspaces.out.path)"}]},
                    "workspaces": [{"name": "out", "workspace": "src"}]},
                {"name": "test", "taskRef": {"name": "cargo"}, "params": [{"name": "c", "value": "$(tasks.clone.results.commit)"}]}
            ],
            "finally": [{"name": "report", "taskRef": {"name": "r"}, "params": [{"name": "s", "value": "$(tasks.test.status)"}]}],
            "results": [{"name": "commit", "value": "$(tasks.clone.results.commit)"}]
        })),
        run(
            json!({"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "2h", "tasks": "90m", "finally": "30m"}}),
        ),
        run(json!({"pipelineRef": {"name": "p"}, "timeouts": {"pipeline": "0"}})),
    ];
    for doc in good {
        assert_eq!(issues(doc.clone()), Vec::<String>::new(), "{doc:#}");
    }
}

#[test]
fn references_are_checked_against_the_catalog() {
    let task = json!({"apiVersion": "tekton.dev/v1", "kind": "Task", "metadata": {"name": "cargo"},
        "spec": {"params": [{"name": "args", "type": "array"}, {"name": "toolchain", "default": "stable"}],
                 "workspaces": [{"name": "source"}], "results": [{"name": "report"}],
                 "steps": [{"name": "run", "image": "rust", "args": ["$(params.args[*])"]}]}});
    let pipe = pipeline(json!({
        "params": [{"name": "rev"}],
        "workspaces": [{"name": "src"}],
        "tasks": [
            {"name": "a", "taskRef": {"name": "cargo"}, "params": [{"name": "args", "value": "test"}],
             "workspaces": [{"name": "sources", "workspace": "src"}]},
            {"name": "b", "taskRef": {"name": "cargo"}, "workspaces": [{"name": "source", "workspace": "src"}],
             "params": [{"name": "args", "value": ["x", "$(tasks.a.results.nope)"]}]}
        ]
    }));
    let run_doc = run(json!({"pipelineRef": {"name": "p"}}));
    let objects: Vec<TektonObject> = [task, pipe, run_doc]
        .iter()
        .map(|d| TektonObject::from_value(d).unwrap())
        .collect();
    let catalog = super::Catalog::from_objects(&objects);
    let found: Vec<String> = objects
        .iter()
        .flat_map(|o| super::validate_in(o, &catalog))
        .map(|i| i.to_string())
        .collect();
    let expect = [
        ".spec.tasks[0].params: task \"cargo\" declares param \"args\" array but it is given string",
        ".spec.tasks[0].workspaces: task \"cargo\" needs workspace \"source\", which is not bound",
        ".spec.tasks[0].workspaces: task \"cargo\" declares no workspace \"sources\"",
        ".spec.tasks[1].params[0].value: task \"a\" declares no result \"nope\"",
        ".spec.params: required param \"rev\" (no default) is not given",
        ".spec.workspaces: workspace \"src\" of the pipeline is not bound",
    ];
    for e in expect {
        assert!(found.iter().any(|f| f == e), "missing {e} in {found:#?}");
    }
    assert_eq!(found.len(), expect.len(), "{found:#?}");
}
