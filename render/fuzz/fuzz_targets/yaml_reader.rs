//! The fast YAML reader either declines a text or reads it exactly as serde-saphyr does.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let (Some(fast), full) = keelson_render::yaml::both_readers(text) {
        assert_eq!(Some(fast), full, "the fast reader differs on {text:?}");
    }
});
