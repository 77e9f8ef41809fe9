//! `keelson build DIR`: render a kustomization, like `kustomize build`.

use std::io::Write;
use std::path::PathBuf;

use keelson::render::{self, LoadRestrictor, RenderOptions, Reorder};

/// Render the kustomization in DIR to stdout, byte-identical to `kustomize build`.
///
/// Example: keelson build overlays-example/overlays/staging
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory holding a kustomization.yaml.
    #[arg(default_value = ".")]
    dir: PathBuf,
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
    let rendered = match render::build(&render::DiskFs, &args.dir, options) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return Ok(1);
        }
    };
    let text = if args.output == "json" {
        let mut out = String::new();
        for obj in &rendered.objects {
            out.push_str(&serde_json::to_string_pretty(obj)?);
            out.push('\n');
        }
        out
    } else {
        rendered.to_yaml()
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    // The process ends now: freeing thousands of objects one by one would only cost time.
    std::mem::forget(rendered);
    std::mem::forget(text);
    Ok(0)
}
