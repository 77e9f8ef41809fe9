//! `keelson-e2e-cluster N DIR`: runs N local clusters until SIGTERM/SIGINT.
//! Used by `e2e/cluster up`; prints `ready` once every cluster answers `/readyz`.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let clusters = args.next().and_then(|n| n.parse().ok()).unwrap_or(2);
    let Some(dir) = args.next().map(PathBuf::from) else {
        eprintln!("usage: keelson-e2e-cluster N DIR");
        std::process::exit(2);
    };
    let options = keelson_e2e::Options {
        clusters,
        controller_manager: true,
        dir: Some(dir),
    };
    let control_plane = match keelson_e2e::ControlPlane::start(options) {
        Ok(cp) => cp,
        Err(e) => {
            eprintln!("keelson-e2e-cluster: {e}");
            std::process::exit(1);
        }
    };
    println!("ready {}", control_plane.kubeconfig().display());
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("keelson-e2e-cluster: {e}");
            std::process::exit(1);
        }
    };
    runtime.block_on(async {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("keelson-e2e-cluster: {e}");
                    return;
                }
            };
        tokio::select! {
            _ = term.recv() => {},
            _ = tokio::signal::ctrl_c() => {},
        }
    });
    drop(control_plane);
}
