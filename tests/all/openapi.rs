//! The HTTP API against its own OpenAPI document, fuzzed by schemathesis (a tool no one
//! here wrote): every documented operation, with generated valid and invalid requests,
//! must answer without a 5xx and as the document says (status, content type, schema).

use std::process::Command;

use crate::read_api::write_read_config;
use weir_e2e::Server;

const ADMIN: &str = "admin-secret-token";

/// `st` beside the test tools' Python (scripts/test-tools.sh installs both).
fn schemathesis() -> std::path::PathBuf {
    let python =
        std::env::var("WEIR_TEST_PYTHON").unwrap_or_else(|_| "/var/tmp/weir-tools/test-venv/bin/python".into());
    std::path::Path::new(&python).with_file_name("st")
}

#[test]
fn every_documented_operation_answers_as_the_openapi_document_says_under_schemathesis() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_read_config(dir.path(), true);
    let server =
        Server::start_with_env(&config, &[("WEIR_ADMIN_TOKEN", ADMIN), ("WEIR_READ_TOKEN", "read-only-token")]);
    let base = format!("http://{}", server.addr);
    let report = dir.path().join("schemathesis");
    let st = schemathesis();
    let here = weir_e2e::repo_root().join("tests/schemathesis");
    let output = Command::new(&st)
        .arg("--config-file")
        .arg(here.join("schemathesis.toml"))
        .arg("run")
        .arg(format!("{base}/v1/openapi.json"))
        .args(["--url", &base])
        .args(["--header", &format!("Authorization: Bearer {ADMIN}")])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "25", "--seed", "7", "--generation-database", "none"])
        // One worker: CPython 3.11.7 fails ast.parse run from two threads at once ("AST
        // constructor recursion depth mismatch"), which hypothesis does while generating.
        .args(["--request-timeout", "20", "--workers", "1", "--no-color"])
        .arg("--report-dir")
        .arg(&report)
        .args(["--report", "junit"])
        .env("SCHEMATHESIS_HOOKS", here.join("hooks.py"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (scripts/test-tools.sh installs it): {e}", st.display()));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "schemathesis found answers that break the document (exit {:?}):\n{stdout}\n{stderr}",
        output.status.code()
    );
    println!("{stdout}");
    assert!(stdout.contains("passed"), "{stdout}");
    drop(server);
}
