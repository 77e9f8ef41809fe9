//! Strategic merge of two arbitrary JSON objects for a known kind: never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(i) = data.iter().position(|&b| b == 0) else { return };
    let (Ok(serde_json::Value::Object(mut target)), Ok(serde_json::Value::Object(patch))) = (
        serde_json::from_slice::<serde_json::Value>(&data[..i]),
        serde_json::from_slice::<serde_json::Value>(&data[i + 1..]),
    ) else {
        return;
    };
    for (group, kind) in [("apps", "Deployment"), ("", "Pod"), ("example.com", "Widget")] {
        let _ = keelson_render::strategic_merge(&mut target, &patch, group, kind);
    }
});
