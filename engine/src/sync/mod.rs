//! Runs plans and syncs for the selected targets on their clusters: each target rendered
//! once, every (target, cluster) pair worked on concurrently, one cluster's failure never
//! stopping another.

mod error;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

pub use error::Error;

use crate::apply;
use crate::cluster;
use crate::config::{Project, Target, Verdict};
use crate::plan::{self, Plan};
use crate::render::{self, RenderOptions};

/// Which targets and clusters to work on (all when `None`).
#[derive(Debug, Clone, Default)]
pub struct Selection {
    pub target: Option<String>,
    pub cluster: Option<String>,
    /// Overrides the kubeconfig file of every cluster.
    pub kubeconfig: Option<PathBuf>,
    /// The repository the tree comes from. With it (and no target selected), the targets
    /// it synced before and no longer has are planned or removed too.
    pub origin: Option<crate::inventory::Origin>,
}

/// The result for one (target, cluster).
#[derive(Debug, Serialize)]
pub struct Outcome<T> {
    pub target: String,
    pub cluster: String,
    #[serde(flatten)]
    pub result: OutcomeResult<T>,
}

/// Success or the reason for failure.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutcomeResult<T> {
    Ok(T),
    #[serde(serialize_with = "as_text")]
    Error(Error),
}

/// Errors leave as their one-line text (JSON output of the CLI).
fn as_text<S: serde::Serializer>(e: &Error, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(e)
}

/// The pairs a selection picks; an unknown target or cluster name is an error.
pub fn select<'p>(
    project: &'p Project,
    selection: &Selection,
) -> Result<Vec<(&'p Target, Vec<&'p crate::config::Cluster>)>, Error> {
    if let Some(t) = &selection.target
        && project.target(t).is_none()
    {
        return Err(Error::Selection {
            what: "target",
            name: t.clone(),
        });
    }
    if let Some(c) = &selection.cluster
        && !project.clusters.iter().any(|x| &x.name == c)
    {
        return Err(Error::Selection {
            what: "cluster",
            name: c.clone(),
        });
    }
    Ok(project
        .targets
        .iter()
        .filter(|t| selection.target.as_ref().is_none_or(|n| *n == t.name))
        .map(|t| {
            let clusters = project
                .clusters_of(t)
                .into_iter()
                .filter(|c| selection.cluster.as_ref().is_none_or(|n| *n == c.name))
                .collect();
            (t, clusters)
        })
        .filter(|(_, c): &(_, Vec<_>)| !c.is_empty())
        .collect())
}

async fn for_each_pair<T, F, Fut>(
    fs: &dyn render::FileSystem,
    root: &Path,
    project: &Project,
    selection: &Selection,
    work: F,
) -> Result<Vec<Outcome<T>>, Error>
where
    F: Fn(cluster::Cluster, Target, Arc<Vec<Map<String, Value>>>) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let pairs = select(project, selection)?;
    let mut jobs = Vec::new();
    for (target, clusters) in pairs {
        let options = RenderOptions {
            load_restrictor: target.load_restrictor.get(),
            ..RenderOptions::default()
        };
        let rendered = render::target(fs, root, target, options)
            .map(|r| Arc::new(r.objects))
            .map_err(Arc::new);
        for c in clusters {
            let rendered = rendered.clone();
            let work = &work;
            let kubeconfig = selection.kubeconfig.clone();
            jobs.push(async move {
                let result = async {
                    let objects = rendered.map_err(Error::Render)?;
                    let connected = cluster::connect(c, kubeconfig.as_deref()).await?;
                    work(connected, target.clone(), objects).await
                }
                .await;
                Outcome {
                    target: target.name.clone(),
                    cluster: c.name.clone(),
                    result: match result {
                        Ok(v) => OutcomeResult::Ok(v),
                        Err(e) => OutcomeResult::Error(e),
                    },
                }
            });
        }
    }
    Ok(futures::future::join_all(jobs).await)
}

/// Plans every selected (target, cluster) of the repository at `root`.
pub async fn diff(
    root: &Path,
    project: &Project,
    selection: &Selection,
) -> Result<Vec<Outcome<Plan>>, Error> {
    diff_in(
        &render::DiskFs,
        root,
        project,
        selection,
        plan::View::default(),
    )
    .await
}

/// [`diff`] of a tree read through `fs` (a directory or a git tree), shown as `view` says.
pub async fn diff_in(
    fs: &dyn render::FileSystem,
    root: &Path,
    project: &Project,
    selection: &Selection,
    view: plan::View,
) -> Result<Vec<Outcome<Plan>>, Error> {
    let mut outcomes = for_each_pair(fs, root, project, selection, |c, t, objects| async move {
        let set = crate::inventory::Set::new(&t.name, selection.origin.as_ref());
        Ok(plan::plan(&c, &set, &objects, &t.sync, view)
            .await
            .map(|(p, _, _)| p)?)
    })
    .await?;
    outcomes.extend(
        for_each_removed(project, selection, |c, removed| async move {
            Ok(plan::removal::plan_removal(&c, &removed).await?.0)
        })
        .await,
    );
    Ok(outcomes)
}

/// Runs `work` for every target the selection's origin synced to a selected cluster and
/// `project` no longer has (none with a target selected, or without an origin).
async fn for_each_removed<T, F, Fut>(
    project: &Project,
    selection: &Selection,
    work: F,
) -> Vec<Outcome<T>>
where
    F: Fn(cluster::Cluster, plan::removal::Removed) -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let Some(origin) = selection
        .origin
        .as_ref()
        .filter(|_| selection.target.is_none())
    else {
        return Vec::new();
    };
    let present: std::collections::BTreeSet<String> =
        project.targets.iter().map(|t| t.name.clone()).collect();
    let clusters = project
        .clusters
        .iter()
        .filter(|c| selection.cluster.as_ref().is_none_or(|n| *n == c.name));
    let jobs = clusters.map(|c| {
        let (work, present) = (&work, &present);
        async move {
            let found = async {
                let connected = cluster::connect(c, selection.kubeconfig.as_deref()).await?;
                let removed = plan::removal::removed(&connected, origin, present).await?;
                Ok::<_, Error>((connected, removed))
            }
            .await;
            let outcome = |target: String, result| Outcome {
                target,
                cluster: c.name.clone(),
                result,
            };
            match found {
                // A cluster that cannot be reached is reported by the targets on it.
                Err(_) => Vec::new(),
                Ok((connected, removed)) => {
                    let mut out = Vec::new();
                    for r in removed {
                        let target = r.target.clone();
                        out.push(outcome(
                            target,
                            match work(connected.clone(), r).await {
                                Ok(v) => OutcomeResult::Ok(v),
                                Err(e) => OutcomeResult::Error(e),
                            },
                        ));
                    }
                    out
                }
            }
        }
    });
    futures::future::join_all(jobs)
        .await
        .into_iter()
        .flatten()
        .collect()
}

/// Overrides of the targets' sync policies from the command line.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub force_prune: bool,
    pub wait: Option<bool>,
    pub timeout: Option<std::time::Duration>,
    pub commit: Option<String>,
    /// Sync even inside deny windows (windows with `manualSync: true` let manual syncs
    /// through without it).
    pub override_windows: bool,
}

/// Syncs every selected (target, cluster) of the repository at `root`.
pub async fn sync(
    root: &Path,
    project: &Project,
    selection: &Selection,
    overrides: &Overrides,
) -> Result<Vec<Outcome<apply::Report>>, Error> {
    sync_in(&render::DiskFs, root, project, selection, overrides).await
}

/// [`sync`] of a tree read through `fs` (a directory or a git tree).
pub async fn sync_in(
    fs: &dyn render::FileSystem,
    root: &Path,
    project: &Project,
    selection: &Selection,
    overrides: &Overrides,
) -> Result<Vec<Outcome<apply::Report>>, Error> {
    let mut outcomes = for_each_pair(fs, root, project, selection, |c, t, objects| async move {
        if !overrides.override_windows
            && let Verdict::Denied(denial) =
                project
                    .sync_windows
                    .verdict(&t.name, &c.name, chrono::Utc::now())
            && !denial.manual_sync
        {
            return Err(Error::Window {
                cluster: c.name.clone(),
                denial,
            });
        }
        let mut options = apply::Options::from_policy(&t.sync);
        options.force_prune = overrides.force_prune;
        if let Some(w) = overrides.wait {
            options.policy.wait = w;
        }
        if let Some(d) = overrides.timeout {
            options.timeout = d;
        }
        options.commit = overrides.commit.clone();
        options.origin = selection.origin.clone();
        Ok(apply::sync(&c, &t.name, &objects, &options).await?)
    })
    .await?;
    outcomes.extend(
        for_each_removed(project, selection, |c, removed| async move {
            let options = apply::Options {
                force_prune: overrides.force_prune,
                ..apply::Options::from_policy(&removed.removal.policy())
            };
            Ok(apply::remove(&c, &removed, &options).await?)
        })
        .await,
    );
    Ok(outcomes)
}
