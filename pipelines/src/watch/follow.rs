//! Watching a PipelineRun and its TaskRuns until the run ends, delivering each event once.

use futures::StreamExt;
use kube::Client;
use kube::api::{Api, ListParams};
use kube::runtime::WatchStreamExt;
use kube::runtime::watcher;

use super::WatchError;
use super::events::{Event, Keyed, pipeline_run_event, task_run_events};
use super::log::DeliveryLog;
use crate::model::{PipelineRun, TaskRun};

/// Receives events. Implemented for closures and for channel senders.
pub trait Callbacks: Send {
    /// One event, delivered once per transition.
    fn on_event(&mut self, event: &Event);
}

impl<F: FnMut(&Event) + Send> Callbacks for F {
    fn on_event(&mut self, event: &Event) {
        self(event)
    }
}

/// The channel form: every event is sent; a closed receiver is ignored.
impl Callbacks for tokio::sync::mpsc::UnboundedSender<Event> {
    fn on_event(&mut self, event: &Event) {
        let _ = self.send(event.clone());
    }
}

/// How to watch.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Server-side timeout of each watch request, in seconds (the watcher then resumes
    /// from the last resourceVersion). `None`: the API server's default.
    pub watch_timeout_secs: Option<u32>,
}

/// Sends the events not delivered before, recording each.
async fn deliver<C: Callbacks, L: DeliveryLog>(
    events: Vec<Keyed>,
    callbacks: &mut C,
    log: &mut L,
) -> Result<(), WatchError> {
    for keyed in events {
        if !log.contains(&keyed.key) {
            callbacks.on_event(&keyed.event);
            log.record(&keyed.key).await?;
        }
    }
    Ok(())
}

enum Item {
    Run(Box<watcher::Event<PipelineRun>>),
    Child(Box<watcher::Event<TaskRun>>),
}

/// An error of a watch that retrying cannot fix (no such resource, no permission).
fn permanent(e: &watcher::Error) -> Option<&kube::Error> {
    let inner = match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        _ => return None,
    };
    match inner {
        kube::Error::Api(s) if matches!(s.code, 401 | 403 | 404) => Some(inner),
        _ => None,
    }
}

/// Follows the PipelineRun `name` in `namespace` until it ends: watches it and its
/// TaskRuns (kube-runtime's watcher resumes from the last resourceVersion and relists when
/// the watch expires), delivers each step, TaskRun and run event once, and returns the
/// finished run. `PipelineRunFinished` comes last, after a final look at every TaskRun.
pub async fn follow<C: Callbacks, L: DeliveryLog>(
    client: Client,
    namespace: &str,
    name: &str,
    callbacks: &mut C,
    log: &mut L,
    options: &FollowOptions,
) -> Result<PipelineRun, WatchError> {
    let runs: Api<PipelineRun> = Api::namespaced(client.clone(), namespace);
    let children: Api<TaskRun> = Api::namespaced(client, namespace);
    let selector = format!("tekton.dev/pipelineRun={name}");
    let mut run_config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut child_config = watcher::Config::default().labels(&selector);
    if let Some(secs) = options.watch_timeout_secs {
        run_config = run_config.timeout(secs);
        child_config = child_config.timeout(secs);
    }
    let run_events = watcher(runs, run_config)
        .default_backoff()
        .map(|e| e.map(|e| Item::Run(Box::new(e))));
    let child_events = watcher(children.clone(), child_config)
        .default_backoff()
        .map(|e| e.map(|e| Item::Child(Box::new(e))));
    let mut stream = std::pin::pin!(futures::stream::select(run_events, child_events));
    while let Some(item) = stream.next().await {
        let item = match item {
            Ok(item) => item,
            Err(e) => {
                if let Some(fatal) = permanent(&e) {
                    return Err(WatchError::Watch(fatal.to_string()));
                }
                // The watcher backs off and restarts (relisting if the resourceVersion
                // expired); keys make the replayed snapshots harmless.
                tracing::warn!(run = name, error = %e, "watch interrupted, resuming");
                continue;
            }
        };
        match item {
            Item::Child(e) => match *e {
                watcher::Event::Apply(tr) | watcher::Event::InitApply(tr) => {
                    deliver(task_run_events(&tr), callbacks, log).await?;
                }
                _ => {}
            },
            Item::Run(e) => match *e {
                watcher::Event::Apply(run) | watcher::Event::InitApply(run) => {
                    if let Some(end) = pipeline_run_event(&run) {
                        return finish(run, end, &children, &selector, callbacks, log).await;
                    }
                }
                watcher::Event::Delete(_) => return Err(WatchError::Deleted(name.to_string())),
                _ => {}
            },
        }
    }
    Err(WatchError::Watch("the watch stream ended".into()))
}

/// Delivers what the children say, then the run's end, and returns the run.
async fn finish<C: Callbacks, L: DeliveryLog>(
    run: PipelineRun,
    end: Keyed,
    children: &Api<TaskRun>,
    selector: &str,
    callbacks: &mut C,
    log: &mut L,
) -> Result<PipelineRun, WatchError> {
    // Tekton finishes the children before the run: catch up with them so that the run's
    // end is the last event.
    let list = children
        .list(&ListParams::default().labels(selector))
        .await
        .map_err(WatchError::Api)?;
    let mut items = list.items;
    items.sort_by(|a, b| {
        a.metadata
            .creation_timestamp
            .cmp(&b.metadata.creation_timestamp)
            .then_with(|| a.metadata.name.cmp(&b.metadata.name))
    });
    for tr in &items {
        deliver(task_run_events(tr), callbacks, log).await?;
    }
    deliver(vec![end], callbacks, log).await?;
    Ok(run)
}
