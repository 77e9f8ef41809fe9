//! Tekton without its controller: the real CRDs of the pinned tektoncd/pipeline module in
//! the real API server, and a test-side driver that writes PipelineRun and TaskRun status
//! the way Tekton's controller (and the pods it runs) would.
#![allow(dead_code)]

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use keelson_pipelines::model::{PipelineRun, TaskRun};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

pub async fn namespace(client: &Client, name: &str) {
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
}

/// Installs Tekton's Pipeline, Task, PipelineRun and TaskRun CRDs once per test binary
/// (server-side apply: idempotent) and waits until they are Established.
pub async fn install_crds(client: &Client) {
    static INSTALLED: OnceCell<()> = OnceCell::const_new();
    INSTALLED
        .get_or_init(|| async {
            let dir = keelson_pipelines::upstream::tekton_dir()
                .unwrap_or_else(|e| panic!("the pinned Tekton module is needed: {e}"));
            let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
            let mut names = Vec::new();
            for file in [
                "300-pipeline.yaml",
                "300-task.yaml",
                "300-pipelinerun.yaml",
                "300-taskrun.yaml",
            ] {
                let path = dir.join("config/300-crds").join(file);
                let text = std::fs::read_to_string(&path).unwrap();
                let mut crd: Value = serde_saphyr::from_str(&text).unwrap();
                // The CRDs convert v1beta1 <-> v1 through Tekton's webhook, which does not run
                // here; this client only speaks v1 (the storage version), so no conversion is
                // ever needed: `None` keeps the API server from calling a missing service.
                crd["spec"]["conversion"] = json!({"strategy": "None"});
                let name = crd["metadata"]["name"].as_str().unwrap().to_string();
                crds.patch(
                    &name,
                    &PatchParams::apply("keelson-e2e").force(),
                    &Patch::Apply(&crd),
                )
                .await
                .unwrap_or_else(|e| panic!("installing {file}: {e}"));
                names.push(name);
            }
            for name in names {
                let established = async {
                    loop {
                        let crd = crds.get(&name).await.unwrap();
                        if crd.status.and_then(|s| s.conditions).is_some_and(|cs| {
                            cs.iter()
                                .any(|c| c.type_ == "Established" && c.status == "True")
                        }) {
                            break;
                        }
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                };
                tokio::time::timeout(Duration::from_secs(60), established)
                    .await
                    .unwrap_or_else(|_| panic!("{name} not Established within 60 s"));
            }
            // Discovery of the new group can lag Established by a moment.
            let probe: Api<PipelineRun> = Api::namespaced(client.clone(), "default");
            for _ in 0..100 {
                if probe.list(&ListParams::default().limit(1)).await.is_ok() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("tekton.dev/v1 PipelineRuns are not served");
        })
        .await;
}

/// Time between two status writes, so that watchers see the intermediate states.
pub const PACE: Duration = Duration::from_millis(120);

/// A knative `Succeeded` condition.
pub fn cond(status: &str, reason: &str, message: &str) -> Value {
    json!([{"type": "Succeeded", "status": status, "reason": reason, "message": message,
            "lastTransitionTime": now()}])
}

pub fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    // RFC 3339 by hand: the driver needs no date library.
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    let (y, mo, d) = civil_from_days(days as i64);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{m:02}:{s:02}Z")
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

pub fn waiting(name: &str) -> Value {
    json!({"name": name, "container": format!("step-{name}"), "waiting": {"reason": "PodInitializing"}})
}

pub fn running(name: &str) -> Value {
    json!({"name": name, "container": format!("step-{name}"), "running": {"startedAt": now()}})
}

pub fn terminated(name: &str, exit_code: i32, reason: &str) -> Value {
    let mut t = json!({"exitCode": exit_code, "reason": if exit_code == 0 { "Completed" } else { "Error" },
                       "startedAt": now(), "finishedAt": now()});
    if exit_code != 0 {
        t["message"] = json!(format!("{name} exited with code {exit_code}"));
    }
    json!({"name": name, "container": format!("step-{name}"), "terminated": t, "terminationReason": reason})
}

/// How one attempt of a TaskRun goes: its steps' exit codes in order (the first non-zero
/// one fails the attempt; the rest are skipped).
#[derive(Debug, Clone)]
pub struct AttemptPlan(pub Vec<(&'static str, i32)>);

impl AttemptPlan {
    pub fn succeeded(&self) -> bool {
        self.0.iter().all(|(_, code)| *code == 0)
    }
}

/// Plays Tekton's controller against the API server.
#[derive(Clone)]
pub struct Driver {
    pub client: Client,
    pub namespace: String,
}

impl Driver {
    pub fn runs(&self) -> Api<PipelineRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    pub fn task_runs(&self) -> Api<TaskRun> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Writes a PipelineRun's status (merge patch of the status subresource).
    pub async fn run_status(&self, run: &str, status: Value) {
        self.runs()
            .patch_status(
                run,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("status of PipelineRun {run}: {e}"));
        tokio::time::sleep(PACE).await;
    }

    /// Writes a TaskRun's whole status: keys it does not set are removed.
    pub async fn task_status(&self, task_run: &str, mut status: Value) {
        for key in [
            "podName",
            "startTime",
            "completionTime",
            "conditions",
            "steps",
            "retriesStatus",
        ] {
            if status.get(key).is_none() {
                status[key] = Value::Null;
            }
        }
        // The CRD requires podName in a status.
        if status["podName"].is_null() {
            status["podName"] = json!("");
        }
        self.task_runs()
            .patch_status(
                task_run,
                &PatchParams::default(),
                &Patch::Merge(&json!({"status": status})),
            )
            .await
            .unwrap_or_else(|e| panic!("status of TaskRun {task_run}: {e}"));
        tokio::time::sleep(PACE).await;
    }

    pub async fn start_run(&self, run: &str) {
        self.run_status(
            run,
            json!({"startTime": now(), "conditions": cond("Unknown", "Running", "Tasks Completed: 0 (Failed: 0, Cancelled 0), Skipped: 0")}),
        )
        .await;
    }

    pub async fn finish_run(&self, run: &str, status: &str, reason: &str, message: &str) {
        self.run_status(
            run,
            json!({"completionTime": now(), "conditions": cond(status, reason, message)}),
        )
        .await;
    }

    /// Creates the TaskRun of a pipeline task, named, labelled and owned as Tekton does.
    pub async fn create_task_run(&self, run: &PipelineRun, task: &str) -> String {
        let run_name = run.name_any();
        let name = format!("{run_name}-{task}");
        let tr: TaskRun = serde_json::from_value(json!({
            "apiVersion": "tekton.dev/v1", "kind": "TaskRun",
            "metadata": {
                "name": name,
                "labels": {
                    "tekton.dev/pipelineRun": run_name,
                    "tekton.dev/pipelineTask": task,
                    "tekton.dev/memberOf": "tasks",
                    "app.kubernetes.io/managed-by": "tekton-pipelines"
                },
                "ownerReferences": [{"apiVersion": "tekton.dev/v1", "kind": "PipelineRun",
                    "name": run_name, "uid": run.uid().unwrap(), "controller": true, "blockOwnerDeletion": true}]
            },
            "spec": {"taskRef": {"name": task, "kind": "Task"}, "serviceAccountName": "default", "timeout": "1h0m0s"}
        }))
        .unwrap();
        self.task_runs()
            .create(&PostParams::default(), &tr)
            .await
            .unwrap_or_else(|e| panic!("creating TaskRun {name}: {e}"));
        self.run_status(
            &run_name,
            json!({"childReferences": [{"apiVersion": "tekton.dev/v1", "kind": "TaskRun", "name": name, "pipelineTaskName": task}]}),
        )
        .await;
        name
    }

    /// Plays every attempt of a TaskRun: steps waiting, all running at once (Tekton starts
    /// every step container together), terminating one by one; a failed attempt with
    /// attempts left is archived into `retriesStatus` as Tekton does (podName cleared, the
    /// old `steps` left in place until the new pod reports). Returns whether it succeeded.
    pub async fn play_task_run(&self, name: &str, attempts: &[AttemptPlan]) -> bool {
        let mut archived: Vec<Value> = Vec::new();
        for (k, plan) in attempts.iter().enumerate() {
            let pod = if k == 0 {
                format!("{name}-pod")
            } else {
                format!("{name}-pod-retry{k}")
            };
            let names: Vec<&str> = plan.0.iter().map(|(n, _)| *n).collect();
            let base = |steps: Vec<Value>, condition: Value| {
                let mut s = json!({"podName": pod, "startTime": now(), "steps": steps, "conditions": condition});
                if !archived.is_empty() {
                    s["retriesStatus"] = json!(archived);
                }
                s
            };
            self.task_status(
                name,
                base(
                    names.iter().map(|n| waiting(n)).collect(),
                    cond("Unknown", "Pending", "Pending"),
                ),
            )
            .await;
            let mut steps: Vec<Value> = names.iter().map(|n| running(n)).collect();
            self.task_status(
                name,
                base(
                    steps.clone(),
                    cond(
                        "Unknown",
                        "Running",
                        "Not all Steps in the Task have finished executing",
                    ),
                ),
            )
            .await;
            let mut failed_step = None;
            for (i, (step, code)) in plan.0.iter().enumerate() {
                if failed_step.is_some() {
                    steps[i] = terminated(step, 0, "Skipped");
                    continue;
                }
                steps[i] = terminated(step, *code, if *code == 0 { "Completed" } else { "Error" });
                if *code != 0 {
                    failed_step = Some((*step, *code));
                    // The rest are skipped in the same update.
                    continue;
                }
                self.task_status(
                    name,
                    base(
                        steps.clone(),
                        cond(
                            "Unknown",
                            "Running",
                            "Not all Steps in the Task have finished executing",
                        ),
                    ),
                )
                .await;
            }
            let last = k + 1 == attempts.len();
            match failed_step {
                None => {
                    let mut s = base(
                        steps,
                        cond("True", "Succeeded", "All Steps have completed executing"),
                    );
                    s["completionTime"] = json!(now());
                    self.task_status(name, s).await;
                    return true;
                }
                Some((step, code)) => {
                    let message = format!("\"step-{step}\" exited with code {code}");
                    let mut failed = base(steps.clone(), cond("False", "Failed", &message));
                    failed["completionTime"] = json!(now());
                    if last {
                        self.task_status(name, failed).await;
                        return false;
                    }
                    // retryTaskRun: archive, clear podName/times, keep the old steps.
                    let mut archived_status = failed.clone();
                    archived_status
                        .as_object_mut()
                        .unwrap()
                        .remove("retriesStatus");
                    archived.push(archived_status);
                    let retry = json!({"podName": "", "steps": steps, "retriesStatus": archived,
                                       "conditions": cond("Unknown", "ToBeRetried", &message)});
                    self.task_status(name, retry).await;
                }
            }
        }
        false
    }

    /// Waits for a PipelineRun that has no status yet (one the runner just created).
    pub async fn next_new_run(&self, seen: &mut Vec<String>) -> PipelineRun {
        loop {
            let list = self.runs().list(&ListParams::default()).await.unwrap();
            for run in list.items {
                let name = run.name_any();
                if !seen.contains(&name) {
                    seen.push(name);
                    return run;
                }
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the run's spec.status is set (Keelson cancelling it) and returns it.
    pub async fn wait_spec_status(&self, run: &str) -> String {
        loop {
            let r = self.runs().get(run).await.unwrap();
            if let Some(s) = r.spec.status {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}
