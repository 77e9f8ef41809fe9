//! The render stage: the pure renderer of `keelson-render`, and the one entry point that
//! renders a target whichever renderer it asks for.

pub use keelson_render::*;
