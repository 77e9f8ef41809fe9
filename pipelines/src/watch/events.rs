//! Step-level events derived from TaskRun and PipelineRun statuses.
//!
//! Tekton emits no per-step events and starts every step container at once (its
//! entrypoint makes step N wait for N-1), so events are derived from status snapshots:
//! a step has *started* once it runs or has terminated **and** every step before it has
//! terminated. Derivation is a pure function of one object: it lists every event the
//! object's state implies, each with a stable key (TaskRun uid + attempt + step index +
//! state). Delivering only keys not delivered before gives exactly one delivery per
//! transition, whatever the order or repetition of the snapshots — across watch restarts,
//! relists and engine restarts alike.

use std::fmt;

use k8s_openapi::api::core::v1::ContainerStateTerminated;

use crate::model::{Condition, Outcome, PipelineRun, StepState, TaskRun, TaskRunStatus, outcome};

/// Which TaskRun an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskRunRef {
    /// The TaskRun's name.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// The pipeline task it runs (label `tekton.dev/pipelineTask`).
    pub pipeline_task: Option<String>,
}

/// How a run or TaskRun ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ending {
    /// Succeeded or failed.
    pub succeeded: bool,
    /// The condition's reason (`Succeeded`, `Failed`, `PipelineRunTimeout`, …).
    pub reason: Option<String>,
    /// The condition's message.
    pub message: Option<String>,
}

impl Ending {
    fn from(condition: Option<&Condition>) -> Self {
        Ending {
            succeeded: outcome(condition) == Outcome::Succeeded,
            reason: condition.and_then(|c| c.reason.clone()),
            message: condition.and_then(|c| c.message.clone()),
        }
    }

    /// The run exceeded its own timeout.
    pub fn timed_out(&self) -> bool {
        matches!(
            self.reason.as_deref(),
            Some("PipelineRunTimeout" | "TaskRunTimeout")
        )
    }

    /// The run was cancelled or stopped through `spec.status`.
    pub fn cancelled(&self) -> bool {
        matches!(
            self.reason.as_deref(),
            Some("Cancelled" | "CancelledRunFinally" | "StoppedRunFinally" | "TaskRunCancelled")
        )
    }
}

/// A step of one attempt of a TaskRun.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepRef {
    /// The TaskRun.
    pub task_run: TaskRunRef,
    /// The attempt: 0 for the first, N after N retries (the length of `retriesStatus`).
    pub attempt: usize,
    /// The step's index in the Task.
    pub index: usize,
    /// The step's name.
    pub name: String,
}

/// Something that happened to a PipelineRun, one of its TaskRuns, or one of their steps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A TaskRun started (its first attempt).
    TaskRunStarted {
        /// The TaskRun.
        task_run: TaskRunRef,
    },
    /// A step started: it runs and every step before it has terminated.
    StepStarted(StepRef),
    /// A step exited 0.
    StepSucceeded(StepRef),
    /// A step failed (non-zero exit, or terminated by a timeout or cancellation).
    StepFailed {
        /// The step.
        step: StepRef,
        /// Its exit code.
        exit_code: i32,
        /// The container's termination message.
        message: Option<String>,
        /// Why it terminated (`Error`, `TimeoutExceeded`, `Continued`, `TaskRunCancelled`, …).
        reason: Option<String>,
    },
    /// A step did not run because an earlier one failed.
    StepSkipped(StepRef),
    /// Tekton retries the TaskRun: attempt `attempt - 1` failed, attempt `attempt` follows.
    TaskRunRetried {
        /// The TaskRun.
        task_run: TaskRunRef,
        /// The new attempt (1 for the first retry).
        attempt: usize,
        /// How the previous attempt failed.
        failure: Ending,
    },
    /// A TaskRun finished for good.
    TaskRunFinished {
        /// The TaskRun.
        task_run: TaskRunRef,
        /// Its last attempt.
        attempt: usize,
        /// How.
        ending: Ending,
    },
    /// Keelson created a PipelineRun (attempt 1, or a re-submission).
    RunSubmitted {
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Keelson's attempt number (1 for the first).
        attempt: u32,
    },
    /// Keelson re-submits a failed run (its retry policy, not Tekton's).
    RunResubmitting {
        /// The failed PipelineRun (empty if its submission failed).
        previous: String,
        /// The attempt about to be submitted (2 for the first retry).
        attempt: u32,
        /// The backoff before it.
        delay: std::time::Duration,
        /// Why the previous attempt failed.
        reason: String,
    },
    /// The PipelineRun finished.
    PipelineRunFinished {
        /// Its name.
        name: String,
        /// How.
        ending: Ending,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fn task(t: &TaskRunRef) -> &str {
            t.pipeline_task.as_deref().unwrap_or(&t.name)
        }
        fn step(s: &StepRef) -> String {
            let retry = if s.attempt > 0 {
                format!(" (retry {})", s.attempt)
            } else {
                String::new()
            };
            format!("{}/{}{retry}", task(&s.task_run), s.name)
        }
        fn why(e: &Ending) -> String {
            match (&e.reason, &e.message) {
                (Some(r), Some(m)) => format!("{r}: {m}"),
                (Some(r), None) => r.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => String::new(),
            }
        }
        match self {
            Event::TaskRunStarted { task_run } => write!(f, "▶ task {}", task(task_run)),
            Event::StepStarted(s) => write!(f, "  … {}", step(s)),
            Event::StepSucceeded(s) => write!(f, "  ✔ {}", step(s)),
            Event::StepFailed {
                step: s,
                exit_code,
                reason,
                message,
            } => {
                write!(f, "  ✘ {} exit {exit_code}", step(s))?;
                if let Some(r) = reason {
                    write!(f, " ({r})")?;
                }
                if let Some(m) = message.as_deref().filter(|m| !m.is_empty()) {
                    write!(f, ": {m}")?;
                }
                Ok(())
            }
            Event::StepSkipped(s) => write!(f, "  - {} skipped", step(s)),
            Event::TaskRunRetried {
                task_run,
                attempt,
                failure,
            } => write!(
                f,
                "↻ task {} retry {attempt} after {}",
                task(task_run),
                why(failure)
            ),
            Event::TaskRunFinished {
                task_run, ending, ..
            } => write!(
                f,
                "{} task {} {}",
                if ending.succeeded { "■" } else { "✘" },
                task(task_run),
                why(ending)
            ),
            Event::RunSubmitted {
                namespace,
                name,
                attempt,
            } => write!(
                f,
                "pipelinerun {namespace}/{name} submitted (attempt {attempt})"
            ),
            Event::RunResubmitting {
                previous,
                attempt,
                delay,
                reason,
            } => write!(
                f,
                "↻ pipelinerun {previous} failed ({reason}); attempt {attempt} in {:.1}s",
                delay.as_secs_f64()
            ),
            Event::PipelineRunFinished { name, ending } => {
                let how = if ending.timed_out() {
                    "timed out"
                } else if ending.cancelled() {
                    "cancelled"
                } else if ending.succeeded {
                    "succeeded"
                } else {
                    "failed"
                };
                write!(f, "pipelinerun {name} {how} ({})", why(ending))
            }
        }
    }
}

/// An event with the key that identifies its transition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keyed {
    /// Unique per transition; valid as a ConfigMap key (`[-._a-zA-Z0-9]`).
    pub key: String,
    /// The event.
    pub event: Event,
}

/// The events a TaskRun's state implies, in the order they happened.
pub fn task_run_events(task_run: &TaskRun) -> Vec<Keyed> {
    let meta = &task_run.metadata;
    let r = TaskRunRef {
        name: meta.name.clone().unwrap_or_default(),
        uid: meta.uid.clone().unwrap_or_default(),
        pipeline_task: meta
            .labels
            .as_ref()
            .and_then(|l| l.get("tekton.dev/pipelineTask"))
            .cloned(),
    };
    let uid = r.uid.clone();
    let mut out = Vec::new();
    let Some(status) = &task_run.status else {
        return out;
    };
    let archived = status.retries_status.as_deref().unwrap_or_default();
    let attempt = archived.len();
    // The current attempt's steps, unless they are still the previous attempt's: Tekton
    // archives an attempt without clearing `steps`, and rewrites them (and `podName`) only
    // once the new pod reports.
    let current_steps: &[StepState] = match status.pod_name.as_deref() {
        None | Some("") => &[],
        Some(pod) if attempt > 0 && archived[attempt - 1].pod_name.as_deref() == Some(pod) => &[],
        Some(_) => status.steps(),
    };
    let started = status.start_time.is_some()
        || attempt > 0
        || outcome(succeeded(status)) != Outcome::Running
        || current_steps
            .iter()
            .any(|s| s.running.is_some() || s.terminated.is_some());
    if !started {
        return out;
    }
    out.push(Keyed {
        key: format!("{uid}.started"),
        event: Event::TaskRunStarted {
            task_run: r.clone(),
        },
    });
    for (k, old) in archived.iter().enumerate() {
        step_events(&r, k, old.steps(), &mut out);
        out.push(Keyed {
            key: format!("{uid}.{}.retried", k + 1),
            event: Event::TaskRunRetried {
                task_run: r.clone(),
                attempt: k + 1,
                failure: Ending::from(succeeded(old)),
            },
        });
    }
    step_events(&r, attempt, current_steps, &mut out);
    let condition = succeeded(status);
    if outcome(condition) != Outcome::Running {
        out.push(Keyed {
            key: format!("{uid}.finished"),
            event: Event::TaskRunFinished {
                task_run: r,
                attempt,
                ending: Ending::from(condition),
            },
        });
    }
    out
}

fn succeeded(status: &TaskRunStatus) -> Option<&Condition> {
    crate::model::succeeded_condition(status.conditions.as_ref())
}

fn step_events(r: &TaskRunRef, attempt: usize, steps: &[StepState], out: &mut Vec<Keyed>) {
    // Every step before this one has terminated.
    let mut before_done = true;
    // A step before this one failed (and did not `continue`): this one never ran.
    let mut blocked = false;
    for (index, state) in steps.iter().enumerate() {
        let step = StepRef {
            task_run: r.clone(),
            attempt,
            index,
            name: state
                .name
                .clone()
                .unwrap_or_else(|| format!("unnamed-{index}")),
        };
        let key = |what: &str| format!("{}.{attempt}.step.{index}.{what}", r.uid);
        let skipped = state.termination_reason.as_deref() == Some("Skipped")
            || (blocked && state.terminated.is_some());
        if skipped {
            out.push(Keyed {
                key: key("skipped"),
                event: Event::StepSkipped(step),
            });
            continue;
        }
        let started = state.terminated.is_some() || (state.running.is_some() && before_done);
        if started {
            out.push(Keyed {
                key: key("started"),
                event: Event::StepStarted(step.clone()),
            });
        }
        match &state.terminated {
            Some(t) if t.exit_code == 0 && !failed_reason(state) => out.push(Keyed {
                key: key("succeeded"),
                event: Event::StepSucceeded(step),
            }),
            Some(t) => {
                blocked |= state.termination_reason.as_deref() != Some("Continued");
                out.push(Keyed {
                    key: key("failed"),
                    event: failed(step, t, state),
                });
            }
            None => before_done = false,
        }
    }
}

/// A step can be killed with exit code 0 recorded (e.g. by a timeout): its reason says so.
fn failed_reason(state: &StepState) -> bool {
    matches!(
        state.termination_reason.as_deref(),
        Some("TimeoutExceeded" | "TaskRunCancelled" | "TaskRunTimeout" | "Cancelled")
    )
}

fn failed(step: StepRef, t: &ContainerStateTerminated, state: &StepState) -> Event {
    Event::StepFailed {
        step,
        exit_code: t.exit_code,
        message: t.message.clone().filter(|m| !m.is_empty()),
        reason: state
            .termination_reason
            .clone()
            .or_else(|| t.reason.clone()),
    }
}

/// The event a PipelineRun's state implies: its end, if it has ended.
pub fn pipeline_run_event(run: &PipelineRun) -> Option<Keyed> {
    let condition = run.condition();
    if outcome(condition) == Outcome::Running {
        return None;
    }
    Some(Keyed {
        key: format!("{}.finished", run.metadata.uid.clone().unwrap_or_default()),
        event: Event::PipelineRunFinished {
            name: run.metadata.name.clone().unwrap_or_default(),
            ending: Ending::from(condition),
        },
    })
}

#[cfg(test)]
mod tests;
