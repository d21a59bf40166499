//! The web console end to end in headless Chromium (Debian's `chromium`, driven by
//! `playwright-core` from npm; scripts/test-tools.sh installs both) against a real
//! `weir serve` running the demo pipeline, with a crashing enricher in front so there
//! are dead letters to find and a fix to put live. The browser script is
//! tests/console/console.test.mjs; its screenshots land in
//! `$CARGO_TARGET_DIR/console-screenshots/`.

use std::path::PathBuf;
use std::process::Command;

use weir_e2e::{Server, component, repo_root, target_dir, tools_dir};

const ADMIN: &str = "console-admin-token";
const READER: &str = "console-read-token";

/// The demo's configuration (host/cli/demo/demo.toml) filled in, with `chaos` (the
/// misbehaving test enricher, crashing on order o-7) first in the chain and the lake's
/// files written per commit (not rolled), so what the console reads is there at once.
fn demo_config_with_chaos(data: &std::path::Path) -> PathBuf {
    let demo = repo_root().join("host/cli/demo");
    let plugins = component("orders_parser").parent().unwrap().to_path_buf();
    let text = std::fs::read_to_string(demo.join("demo.toml"))
        .unwrap()
        .replace("PLUGIN_DIR", &plugins.display().to_string())
        .replace("DATA_DIR", &data.display().to_string())
        .replace("DEMO_DIR", &demo.display().to_string())
        .replace("enrichers = [\"restaurant-enricher\"]", "enrichers = [\"chaos\", \"restaurant-enricher\"]")
        .replace("type = \"lake\"\npath = \"lake\"", "type = \"lake\"\npath = \"lake\"\nroll_interval = \"0s\"")
        + &format!(
            "\n[plugins.chaos]\npath = \"{}\"\nversion = \"1.0.0\"\nconfig = {{ panic_on_order = \"o-7\" }}\n",
            component("misbehaving_enricher").display()
        );
    assert!(text.matches("roll_interval").count() == 1, "the demo's lake sink changed: {text}");
    let path = data.join("console.toml");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn the_console_drives_a_canary_a_shadow_a_rollback_and_a_replay_in_chromium_and_a_read_token_cannot_act() {
    let chromium = std::env::var_os("WEIR_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    assert!(chromium.exists(), "{} is missing: scripts/test-tools.sh installs Debian's chromium", chromium.display());
    let playwright = tools_dir().join("console-tools/node_modules/playwright-core");
    assert!(playwright.exists(), "{} is missing: run scripts/test-tools.sh", playwright.display());
    let dir = tempfile::tempdir().unwrap();
    let config = demo_config_with_chaos(dir.path());
    let server = Server::start_with_env(&config, &[("WEIR_ADMIN_TOKEN", ADMIN), ("WEIR_READ_TOKEN", READER)]);
    // The pages are the binary's own, with a policy allowing nothing from elsewhere.
    let page =
        crate::streaming::rt().block_on(weir_client::request(server.addr, "GET", "/console/", None, b"")).unwrap();
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<script type=\"module\" src=\"app.js\">"), "{}", page.body);
    assert!(page.header("content-security-policy").is_some_and(|p| p.starts_with("default-src 'self'")));
    let script = crate::streaming::rt()
        .block_on(weir_client::request(server.addr, "GET", "/console/app.js", None, b""))
        .unwrap();
    assert_eq!((script.status, script.header("content-type")), (200, Some("text/javascript; charset=utf-8")));
    // Fixtures for chaos@2 (it passes events through): the expected output as the
    // harness writes it, and a wrong one the host must refuse.
    let input = dir.path().join("chaos-input.ndjson");
    std::fs::write(
        &input,
        "{\"key\":\"r-1\",\"time\":\"2026-11-26T11:00:00Z\",\"fields\":{\"order_id\":\"o-1\",\"total\":12.5}}\n",
    )
    .unwrap();
    let expected = dir.path().join("chaos-expected.ndjson");
    let cache = dir.path().join("code-cache");
    let run = weir_e2e::weir(
        &[
            &"plugin",
            &"test",
            &component("misbehaving_enricher"),
            &"--input",
            &input,
            &"--expect",
            &expected,
            &"--update",
        ],
        &cache,
    );
    assert_eq!(run.code, 0, "{}", run.all());
    let wrong = dir.path().join("chaos-wrong.ndjson");
    std::fs::write(&wrong, std::fs::read_to_string(&expected).unwrap().replace("o-1", "o-2")).unwrap();
    let screenshots = target_dir().join("console-screenshots");
    let output = Command::new("node")
        .arg(repo_root().join("tests/console/console.test.mjs"))
        .env("WEIR_URL", format!("http://{}", server.addr))
        .env("ADMIN_TOKEN", ADMIN)
        .env("READ_TOKEN", READER)
        .env("CHAOS_WASM", component("misbehaving_enricher"))
        .env("PLAYWRIGHT_CORE", &playwright)
        .env("CHROMIUM", &chromium)
        .env("SCREENSHOTS", &screenshots)
        .env("FIXTURES_INPUT", &input)
        .env("FIXTURES_EXPECTED", &expected)
        .env("FIXTURES_WRONG", &wrong)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout).into_owned() + &String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the console test failed:\n{text}");
    assert!(text.contains("console test passed"), "{text}");
    for page in
        ["graph", "plugin-uploaded", "canary", "shadow", "rolled-back", "dead-letters", "metrics", "audit", "read-only"]
    {
        let shot = screenshots.join(format!("{page}.png"));
        assert!(std::fs::metadata(&shot).is_ok_and(|m| m.len() > 10_000), "{} is missing or empty", shot.display());
    }
    drop(server);
}
