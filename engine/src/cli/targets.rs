//! The verbs that work on a repository's targets and their clusters: `keelson diff`
//! (plans) and `keelson sync` (applies).

use std::io::IsTerminal;
use std::path::PathBuf;

use keelson::config::Project;
use keelson::plan::{self, Action, Plan};
use keelson::source::{Location, Rev, Tree};
use keelson::sync::{self, Outcome, OutcomeResult, Overrides, Selection};
use keelson::time::parse_duration;

use super::exit::Exit;
use super::repo::RepoArgs;

/// Which targets and clusters (flags shared by diff and sync).
#[derive(Debug, clap::Args)]
pub struct Common {
    /// The repository holding keelson.yaml (ignored with --repo).
    #[arg(default_value = ".")]
    repo_dir: PathBuf,
    #[command(flatten)]
    repo: RepoArgs,
    /// With --repo: the branch, tag, ref or commit SHA to work on.
    #[arg(
        long = "ref",
        value_name = "REV",
        default_value = "HEAD",
        requires = "repo"
    )]
    rev: String,
    /// Only this target.
    #[arg(long)]
    target: Option<String>,
    /// Only this cluster.
    #[arg(long)]
    cluster: Option<String>,
    /// Use this kubeconfig file for every cluster.
    #[arg(long, env = "KEELSON_KUBECONFIG")]
    kubeconfig: Option<PathBuf>,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Human)]
    output: Format,
}

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
}

/// Show what a sync would change on every selected cluster (server-side dry-run).
///
/// Exit codes as `kubectl diff`: 0 no differences, 1 differences, 2 errors.
///
/// Example: keelson diff overlays-example --target shop-prod
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    #[command(flatten)]
    common: Common,
    /// Show metadata.managedFields in the diff (who owns which field).
    #[arg(long)]
    show_managed_fields: bool,
}

/// Apply the selected targets with server-side apply, prune and wait.
///
/// Example: keelson sync overlays-example --cluster staging --wait --timeout 2m
#[derive(Debug, clap::Args)]
pub struct SyncArgs {
    #[command(flatten)]
    common: Common,
    /// Prune even when the prune guard would refuse.
    #[arg(long)]
    force_prune: bool,
    /// Wait for health (overrides the targets' policy).
    #[arg(long)]
    wait: bool,
    /// How long to wait (30s, 5m, 1h).
    #[arg(long, value_parser = parse_duration)]
    timeout: Option<std::time::Duration>,
    /// Only show what would change (the same as `keelson diff`).
    #[arg(long)]
    dry_run: bool,
    /// Sync even where a deny window of keelson.yaml's syncWindows holds syncs back.
    #[arg(long)]
    override_windows: bool,
}

/// The repository (a local directory, or `--repo` fetched at `--ref`), its project file
/// and the selection.
fn load(common: &Common) -> anyhow::Result<(Tree, Project, Selection)> {
    let location = match common.repo.spec()? {
        None => Location::Local(common.repo_dir.clone()),
        Some(spec) => Location::Remote {
            spec: Box::new(spec),
            rev: Rev::parse(&common.rev).map_err(|m| anyhow::anyhow!("--ref: {m}"))?,
        },
    };
    let tree = Tree::open(&common.repo.source(), &location, common.repo.mode())?;
    let project = tree.project()?;
    let selection = Selection {
        target: common.target.clone(),
        cluster: common.cluster.clone(),
        kubeconfig: common.kubeconfig.clone(),
        origin: location
            .origin()
            .map(|u| keelson::inventory::Origin::of(&u)),
    };
    Ok((tree, project, selection))
}

/// Runs `work` to completion, with a spinner on stderr when it is a terminal (multi-cluster
/// runs can take a while; scripts and pipes get no escape codes).
fn with_progress<T>(what: &str, work: impl std::future::Future<Output = T>) -> anyhow::Result<T> {
    let rt = super::runtime()?;
    if !std::io::stderr().is_terminal() {
        return Ok(rt.block_on(work));
    }
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_message(what.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    let out = rt.block_on(work);
    bar.finish_and_clear();
    Ok(out)
}

struct Paint {
    on: bool,
}

impl Paint {
    fn line(&self, line: &str) -> String {
        if !self.on {
            return line.to_string();
        }
        let code = match line.as_bytes().first() {
            Some(b'+') if !line.starts_with("+++") => "32",
            Some(b'-') if !line.starts_with("---") => "31",
            Some(b'@') => "36",
            _ => return line.to_string(),
        };
        format!("\x1b[{code}m{line}\x1b[0m")
    }
}

fn print_plans(outcomes: &[Outcome<Plan>]) {
    let paint = Paint {
        on: std::io::stdout().is_terminal(),
    };
    for o in outcomes {
        match &o.result {
            OutcomeResult::Ok(plan) => {
                for c in plan.changes.iter().filter(|c| c.action != Action::Prune) {
                    for line in c.diff.lines() {
                        println!("{}", paint.line(line));
                    }
                }
                // Then one line per object that changes or that the policy leaves alone.
                let lines: Vec<String> = plan
                    .changes
                    .iter()
                    .filter(|c| c.action != Action::Unchanged || c.skipped.is_some())
                    .map(plan::Change::summary)
                    .chain(
                        plan.kept
                            .iter()
                            .map(|k| format!("keep {} ({})", k.object, k.reason)),
                    )
                    .collect();
                if let Some(policy) = plan.removed {
                    let policy = serde_json::to_value(policy).unwrap_or_default();
                    println!(
                        "target {} left keelson.yaml (onRemoval: {}), cluster {}:",
                        o.target,
                        policy.as_str().unwrap_or_default(),
                        o.cluster
                    );
                    println!(
                        "  delete its inventory (its ApplySet parent in {})",
                        keelson::inventory::PARENT_NAMESPACE
                    );
                } else if !lines.is_empty() {
                    println!("target {}, cluster {}:", o.target, o.cluster);
                }
                for line in lines {
                    println!("  {line}");
                }
                for e in &plan.errors {
                    eprintln!(
                        "error: target {} cluster {}: {}: {}",
                        o.target, o.cluster, e.object, e.message
                    );
                }
            }
            OutcomeResult::Error(e) => {
                eprintln!("error: target {} cluster {}: {e}", o.target, o.cluster)
            }
        }
    }
    println!();
    println!(
        "{:<24} {:<16} {:>6} {:>6} {:>9} {:>6} {:>6}",
        "TARGET", "CLUSTER", "CREATE", "UPDATE", "UNCHANGED", "PRUNE", "ERRORS"
    );
    for o in outcomes {
        match &o.result {
            OutcomeResult::Ok(p) => println!(
                "{:<24} {:<16} {:>6} {:>6} {:>9} {:>6} {:>6}",
                o.target,
                o.cluster,
                p.count(Action::Create),
                p.count(Action::Update),
                p.count(Action::Unchanged),
                p.count(Action::Prune),
                p.errors.len()
            ),
            OutcomeResult::Error(_) => println!(
                "{:<24} {:<16} {:>6}",
                o.target, o.cluster, "failed (see above)"
            ),
        }
    }
}

/// `kubectl diff`'s convention: 0 no differences, 1 differences, 2 an error anywhere.
fn diff_exit(outcomes: &[Outcome<Plan>]) -> Exit {
    let error = outcomes.iter().any(|o| match &o.result {
        OutcomeResult::Ok(p) => !p.errors.is_empty(),
        OutcomeResult::Error(_) => true,
    });
    let changes = outcomes
        .iter()
        .any(|o| matches!(&o.result, OutcomeResult::Ok(p) if p.has_changes()));
    if error {
        Exit::Error
    } else if changes {
        Exit::DIFFERENCES
    } else {
        Exit::Success
    }
}

fn run_diff(common: &Common, view: plan::View) -> anyhow::Result<Exit> {
    let (tree, project, selection) = load(common)?;
    let outcomes = with_progress(
        "planning on every cluster…",
        sync::diff_in(tree.fs(), tree.root(), &project, &selection, view),
    )??;
    if common.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        print_plans(&outcomes);
    }
    Ok(diff_exit(&outcomes))
}

pub fn diff(args: DiffArgs) -> anyhow::Result<Exit> {
    let view = plan::View {
        managed_fields: args.show_managed_fields,
    };
    run_diff(&args.common, view)
}

pub fn sync(args: SyncArgs) -> anyhow::Result<Exit> {
    if args.dry_run {
        return run_diff(&args.common, plan::View::default());
    }
    let (tree, project, selection) = load(&args.common)?;
    let overrides = Overrides {
        force_prune: args.force_prune,
        wait: args.wait.then_some(true),
        timeout: args.timeout,
        commit: tree.commit().map(|c| c.to_string()),
        override_windows: args.override_windows,
    };
    let outcomes = with_progress(
        "syncing every cluster…",
        sync::sync_in(tree.fs(), tree.root(), &project, &selection, &overrides),
    )??;
    if args.common.output == Format::Json {
        println!("{}", serde_json::to_string_pretty(&outcomes)?);
    } else {
        println!(
            "{:<24} {:<16} {:>8} {:>7} {:>9}  RESULT",
            "TARGET", "CLUSTER", "APPLIED", "PRUNED", "UNCHANGED"
        );
        for o in &outcomes {
            match &o.result {
                OutcomeResult::Ok(r) => {
                    println!(
                        "{:<24} {:<16} {:>8} {:>7} {:>9}  {}",
                        o.target,
                        o.cluster,
                        r.applied.len(),
                        r.pruned.len(),
                        r.plan.count(Action::Unchanged),
                        match r.plan.removed {
                            None => "synced",
                            Some(keelson::config::OnRemoval::Prune) => "removed",
                            Some(keelson::config::OnRemoval::Orphan) => "orphaned",
                        }
                    );
                    for t in r.takeovers() {
                        println!("  took over {t}");
                    }
                }
                OutcomeResult::Error(e) => {
                    println!(
                        "{:<24} {:<16} {:>8} {:>7} {:>9}  FAILED",
                        o.target, o.cluster, "-", "-", "-"
                    );
                    eprintln!("error: target {} cluster {}: {e}", o.target, o.cluster);
                }
            }
        }
    }
    let failed = outcomes
        .iter()
        .any(|o| matches!(o.result, OutcomeResult::Error(_)));
    Ok(if failed { Exit::Failure } else { Exit::Success })
}
