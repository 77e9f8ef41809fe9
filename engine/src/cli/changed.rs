//! `keelson changed --repo URL --from REV --to REV`: the targets a range of commits touches.

use std::io::Write;

use anyhow::Context;
use keelson::render::RenderOptions;
use keelson::source::Rev;
use keelson::source::changes::Reason;

use super::exit::Exit;
use super::repo::RepoArgs;

/// Print the targets of keelson.yaml that the commits from --from to --to touch: those
/// whose render read a changed file (or looked in a directory that gained or lost an
/// entry), whose definition changed, and those added or removed.
///
/// Example: keelson changed --repo https://git.example.com/org/deploy.git --from v1.4.0 --to main
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    repo: RepoArgs,
    /// The old revision (branch, tag, ref or commit SHA).
    #[arg(long, value_name = "REV")]
    from: String,
    /// The new revision.
    #[arg(long, value_name = "REV", default_value = "HEAD")]
    to: String,
    /// Also print why each target is touched.
    #[arg(long)]
    why: bool,
    /// Output format: names (one target per line) or json (the full report).
    #[arg(short, long, value_enum, default_value_t = Format::Names)]
    output: Format,
}

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Names,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let spec = args
        .repo
        .spec()?
        .context("--repo is required: changed compares two commits of a repository")?;
    let from = Rev::parse(&args.from).map_err(|m| anyhow::anyhow!("--from: {m}"))?;
    let to = Rev::parse(&args.to).map_err(|m| anyhow::anyhow!("--to: {m}"))?;
    let source = args.repo.source();
    // A person's own CLI: targets may ask for LoadRestrictionsNone.
    let options = RenderOptions {
        load_restrictor: keelson::render::LoadRestrictor::None,
        ..RenderOptions::default()
    };
    let report = source.changed(&spec, &from, &to, options)?;
    let mut out = String::new();
    if args.output == Format::Json {
        out = serde_json::to_string_pretty(&report)?;
        out.push('\n');
    } else {
        for t in &report.targets {
            out.push_str(&t.target);
            out.push('\n');
            if args.why {
                for r in &t.reasons {
                    out.push_str(&format!("  {}\n", describe(r)));
                }
            }
        }
    }
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(Exit::Success)
}

fn describe(r: &Reason) -> String {
    match r {
        Reason::Added => "added to keelson.yaml".into(),
        Reason::Removed => "removed from keelson.yaml".into(),
        Reason::Definition => "its definition in keelson.yaml changed".into(),
        Reason::File { path, status } => {
            format!(
                "{} {}",
                format!("{status:?}").to_lowercase(),
                path.display()
            )
        }
        Reason::Directory { dir, path } => format!(
            "{} gained or lost an entry ({})",
            dir.display(),
            path.display()
        ),
        Reason::Path { path } => format!("its path changed ({})", path.display()),
        Reason::PreviousRenderFailed => "its render at --from failed".into(),
        Reason::Unknown => "no record of what it reads".into(),
    }
}
