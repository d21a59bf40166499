//! Test-only: claims the host's own `weir:plugin@0.3.0` and the `enricher` world, but its
//! `host.counter-add` import and its `enrich` export have the wrong types. Reading its
//! imports and exports by name finds nothing wrong; only linking and type-checking it
//! against the host does, so `weir plugin inspect` must do that, as loading does.
// The bindings wit-bindgen generates use `unsafe` for the canonical ABI glue.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: "
        package weir:plugin@0.3.0;

        interface host {
            counter-add: func(name: string) -> u64;
        }

        interface enrich {
            configure: func(config: list<tuple<string, string>>) -> result<_, string>;
            enrich: func(events: list<u8>) -> list<u8>;
        }

        world enricher {
            import host;
            export enrich;
        }
    ",
    world: "enricher",
    generate_all,
});

struct Mistyped;

impl exports::weir::plugin::enrich::Guest for Mistyped {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Vec<u8>) -> Vec<u8> {
        // Uses the import, so the component really imports it.
        let count = weir::plugin::host::counter_add("events");
        let mut out = events;
        out.extend_from_slice(&count.to_le_bytes());
        out
    }
}

export!(Mistyped);
