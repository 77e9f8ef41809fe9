//! Renders an in-memory tree whose kustomization and resource file come from the input:
//! any bytes must give output or an error — never a panic or a hang.
#![no_main]

use keelson_render::{self as render, MemFs, RenderOptions};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into a kustomization and one resource file.
    let (k, r) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &b""[..]),
    };
    let mut fs = MemFs::new();
    fs.insert("/t/kustomization.yaml", k.to_vec());
    fs.insert("/t/r.yaml", r.to_vec());
    fs.insert("/t/patch.yaml", r.to_vec());
    if let Ok(rendered) = render::build(&fs, std::path::Path::new("/t"), RenderOptions::default()) {
        let _ = rendered.to_yaml();
    }
});
