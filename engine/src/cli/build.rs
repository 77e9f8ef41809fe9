//! `keelson build DIR`: render a kustomization, like `kustomize build`; with
//! `--repo URL --ref REV`, DIR is a path in that repository at that revision.

use std::io::Write;
use std::path::PathBuf;

use keelson::render::{self, LoadRestrictor, RenderOptions, Reorder};
use keelson::source::{Location, Rev, Tree};

use super::exit::Exit;
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
    #[arg(long, value_enum)]
    reorder: Option<Order>,
    /// Which files a kustomization may read.
    #[arg(long, value_enum, default_value_t = Restrictor::LoadRestrictionsRootOnly)]
    load_restrictor: Restrictor,
    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Yaml)]
    output: Format,
}

/// `--reorder`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Order {
    Legacy,
    None,
}

/// `--load-restrictor`, spelled as kustomize spells it.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
#[allow(clippy::enum_variant_names)]
enum Restrictor {
    #[value(name = "LoadRestrictionsRootOnly")]
    LoadRestrictionsRootOnly,
    #[value(name = "LoadRestrictionsNone")]
    LoadRestrictionsNone,
}

/// `-o`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Yaml,
    Json,
}

pub fn run(args: Args) -> anyhow::Result<Exit> {
    let options = RenderOptions {
        load_restrictor: match args.load_restrictor {
            Restrictor::LoadRestrictionsNone => LoadRestrictor::None,
            Restrictor::LoadRestrictionsRootOnly => LoadRestrictor::RootOnly,
        },
        reorder: args.reorder.map(|r| match r {
            Order::None => Reorder::None,
            Order::Legacy => Reorder::Legacy,
        }),
        ..RenderOptions::default()
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
    let tree = Tree::open(&args.repo.source(), &location, args.repo.mode())?;
    let dir = match &tree {
        Tree::Local(dir) => dir.clone(),
        Tree::Git { .. } => tree.path(&args.dir),
    };
    let rendered = match render::build(tree.fs(), &dir, options) {
        Ok(r) => r,
        Err(e) => {
            // The render itself failed: kustomize build's exit 1, not a usage error.
            eprintln!("error: {e}");
            return Ok(Exit::Failure);
        }
    };
    let chunks = if args.output == Format::Json {
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
    Ok(Exit::Success)
}
