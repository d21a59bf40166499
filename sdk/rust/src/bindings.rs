//! Bindings generated from the crate's copy of `wit/weir-plugin.wit` (inside the crate, so the
//! published package builds on its own), one module per world.
//!
//! The `parser` world generates the shared `weir:plugin/types` and `weir:plugin/host`
//! interfaces; the other two worlds reuse them through `with`, so the three worlds share
//! one `EventBatch`, one `BatchOutput`, and one set of host imports.
//!
//! Each world's export macro is public (`pub_export_macro`) so that the SDK's
//! `export_*!` macros can expand it inside a plugin crate. With a public export macro,
//! wit-bindgen embeds only the world's imports here and the exports where the macro is
//! expanded, so a plugin linking this crate declares only the world it implements.

#![allow(unsafe_code, unreachable_pub, missing_debug_implementations, missing_docs)]

pub mod parser {
    wit_bindgen::generate!({
        world: "parser",
        path: "wit",
        generate_all,
        pub_export_macro: true,
        default_bindings_module: "weir_sdk::bindings::parser",
    });
}

pub mod enricher {
    wit_bindgen::generate!({
        world: "enricher",
        path: "wit",
        with: {
            "weir:plugin/types@0.3.0": crate::bindings::parser::weir::plugin::types,
            "weir:plugin/host@0.3.0": crate::bindings::parser::weir::plugin::host,
        },
        pub_export_macro: true,
        default_bindings_module: "weir_sdk::bindings::enricher",
    });
}

pub mod aggregator {
    wit_bindgen::generate!({
        world: "aggregator",
        path: "wit",
        with: {
            "weir:plugin/types@0.3.0": crate::bindings::parser::weir::plugin::types,
            "weir:plugin/host@0.3.0": crate::bindings::parser::weir::plugin::host,
        },
        pub_export_macro: true,
        default_bindings_module: "weir_sdk::bindings::aggregator",
    });
}
