//! `weir plugin inspect` on every component.

use weir_e2e::{component, weir};

#[test]
fn inspect_shows_world_version_imports_and_what_is_granted_for_every_example() {
    let cache = tempfile::tempdir().unwrap();
    for (name, world, export) in [
        ("orders_parser", "parser", "weir:plugin/parse@0.3.0"),
        ("restaurant_enricher", "enricher", "weir:plugin/enrich@0.3.0"),
        ("restaurant_stats", "aggregator", "weir:plugin/aggregate@0.3.0"),
        ("misbehaving_enricher", "enricher", "weir:plugin/enrich@0.3.0"),
    ] {
        let run = weir(&[&"plugin", &"inspect", &component(name)], cache.path());
        assert_eq!(run.code, 0, "{name}: {}", run.all());
        assert!(run.stdout.contains(&format!("world      {world} (exports {export})")), "{name}: {}", run.all());
        assert!(run.stdout.contains("wit        weir:plugin@0.3.0"), "{name}: {}", run.all());
        assert!(run.stdout.contains("granted    nothing"), "{name}: {}", run.all());
    }
}

#[test]
fn inspect_refuses_a_component_from_an_unknown_wit_version_and_says_why() {
    let cache = tempfile::tempdir().unwrap();
    let run = weir(&[&"plugin", &"inspect", &component("future_version")], cache.path());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("weir:plugin@0.9.0"), "{}", run.all());
    assert!(run.stderr.contains("acme:net/raw-socket"), "{}", run.all());
}

#[test]
fn inspect_refuses_a_component_whose_host_import_has_the_wrong_type_as_loading_would() {
    let cache = tempfile::tempdir().unwrap();
    let run = weir(&[&"plugin", &"inspect", &component("mistyped_host")], cache.path());
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("cannot be linked"), "{}", run.all());
    assert!(run.stderr.contains("weir:plugin/host@0.3.0"), "{}", run.all());
    assert!(run.stderr.contains("counter-add"), "{}", run.all());
}
