//! Test-only: claims `weir:plugin@0.9.0` and imports `acme:net/raw-socket`, which no
//! weir host provides. The host must refuse it and give both reasons at once.
// The bindings wit-bindgen generates use `unsafe` for the canonical ABI glue.
#![allow(unsafe_code)]

wit_bindgen::generate!({
    inline: "
        package weir:plugin@0.9.0;

        interface enrich {
            configure: func(config: list<tuple<string, string>>) -> result<_, string>;
            enrich: func(events: list<u8>) -> list<u8>;
        }

        world enricher {
            import acme:net/raw-socket;
            export enrich;
        }

        package acme:net {
            interface raw-socket {
                connect: func(host: string) -> u32;
            }
        }
    ",
    world: "enricher",
    generate_all,
});

struct FromTheFuture;

impl exports::weir::plugin::enrich::Guest for FromTheFuture {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn enrich(events: Vec<u8>) -> Vec<u8> {
        // Uses the import, so the component really imports it.
        let socket = acme::net::raw_socket::connect("example.invalid");
        let mut out = events;
        out.extend_from_slice(&socket.to_le_bytes());
        out
    }
}

export!(FromTheFuture);
