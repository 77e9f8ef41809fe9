//! `keelson build DIR`: render a kustomization, like `kustomize build`; with
//! `--repo URL --ref REV`, DIR is a path in that repository at that revision.

use std::io::Write;
use std::path::PathBuf;

use keelson::render::{self, LoadRestrictor, RenderOptions, Reorder};
use keelson::source::{Location, Rev, Tree};

use super::repo::RepoArgs;

/// Render the kustomization in DIR to stdout, byte-identical to `kustomize build`.
///
/// Example: keelson build overlays-example/overlays/staging
///
/// Example: keelson build --repo https://git.example.com/org/deploy.git --ref v1.4.0 overlays/prod
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding a kustomization.yaml (with --repo: relative to the repository root).
    #[arg(default_value = ".")]
    dir: PathBuf,
    #[command(flatten)]
    repo: RepoArgs,
    /// With --repo: the branch, tag, ref or commit SHA to render.
    #[arg(
        long = "ref",
        value_name = "REV",
        default_value = "HEAD",
        requires = "repo"
    )]
    rev: String,
    /// Output order: legacy (kind order) or none (load order).
    #[arg(long, value_parser = ["legacy", "none"])]
    reorder: Option<String>,
    /// LoadRestrictionsRootOnly (default) or LoadRestrictionsNone.
    #[arg(long, default_value = "LoadRestrictionsRootOnly",
          value_parser = ["LoadRestrictionsRootOnly", "LoadRestrictionsNone"])]
    load_restrictor: String,
    /// Output format.
    #[arg(short, long, default_value = "yaml", value_parser = ["yaml", "json"])]
    output: String,
}

pub fn run(args: Args) -> anyhow::Result<i32> {
    let options = RenderOptions {
        load_restrictor: match args.load_restrictor.as_str() {
            "LoadRestrictionsNone" => LoadRestrictor::None,
            _ => LoadRestrictor::RootOnly,
        },
        reorder: args.reorder.as_deref().map(|r| match r {
            "none" => Reorder::None,
            _ => Reorder::Legacy,
        }),
    };
    let location = match args.repo.spec()? {
        None => Location::Local(args.dir.clone()),
        Some(spec) => {
            if args.dir.is_absolute() {
                anyhow::bail!("with --repo, DIR is a path inside the repository");
            }
            let rev = Rev::parse(&args.rev).map_err(|m| anyhow::anyhow!("--ref: {m}"))?;
            Location::Remote {
                spec: Box::new(spec),
                rev,
            }
        }
    };
    let tree = match Tree::open(&args.repo.source(), &location, args.repo.mode()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(1);
        }
    };
    let dir = match &tree {
        Tree::Local(dir) => dir.clone(),
        Tree::Git { .. } => tree.path(&args.dir),
    };
    let rendered = match render::build(tree.fs(), &dir, options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(1);
        }
    };
    let chunks = if args.output == "json" {
        let mut out = String::new();
        for obj in &rendered.objects {
            out.push_str(&serde_json::to_string_pretty(obj)?);
            out.push('\n');
        }
        vec![out]
    } else {
        rendered.yaml_chunks()
    };
    let mut stdout = std::io::stdout().lock();
    for chunk in &chunks {
        stdout.write_all(chunk.as_bytes())?;
    }
    stdout.flush()?;
    // The process ends now: freeing thousands of objects one by one would only cost time.
    std::mem::forget(rendered);
    std::mem::forget(chunks);
    Ok(0)
}
