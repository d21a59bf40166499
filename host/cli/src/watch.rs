//! `weir plugin test --watch`: rebuild and retest on every change, like `spin watch` or
//! `cargo watch`, so a plugin author sees the harness's verdict as they save.
//!
//! The working directory is polled (every 300 ms) rather than watched through inotify:
//! no extra dependency, and it behaves the same on every filesystem. The snapshot to
//! compare with is taken before the build, so a file saved while a build runs starts
//! another round; build outputs (`target/`, `node_modules/`, `*.wasm`) are not looked at,
//! and the scaffolds' builds rewrite nothing else unless it changed (a lock file created
//! by the first build costs one more round).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use weir_harness::TestOptions;

/// Directories never looked into: build outputs, dependencies, caches, VCS.
const SKIPPED_DIRS: [&str; 7] = ["target", "node_modules", ".git", ".venv", "__pycache__", "fuzz-findings", ".cache"];
/// At most this many files are watched: a larger tree is not a plugin's.
const MAX_FILES: usize = 20_000;
const POLL: Duration = Duration::from_millis(300);

/// The build command for the plugin in `dir`, from what the scaffold put there.
fn default_build(dir: &Path) -> Option<String> {
    if dir.join("Cargo.toml").is_file() {
        Some("cargo build --release --target wasm32-wasip2".to_owned())
    } else if std::fs::read_to_string(dir.join("package.json")).is_ok_and(|p| p.contains("\"build\"")) {
        Some("npm run build".to_owned())
    } else if dir.join("build.sh").is_file() {
        Some("./build.sh".to_owned())
    } else {
        None
    }
}

type Snapshot = BTreeMap<PathBuf, (SystemTime, u64)>;

/// Modification time and size of every watched file under `dir`.
fn snapshot(dir: &Path) -> Snapshot {
    let mut files = Snapshot::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(meta) = entry.metadata() else { continue };
            let name = entry.file_name();
            if meta.is_dir() {
                if !SKIPPED_DIRS.iter().any(|s| name == *s) {
                    stack.push(path);
                }
            } else if path.extension().is_none_or(|e| e != "wasm") {
                files.insert(path, (meta.modified().unwrap_or(SystemTime::UNIX_EPOCH), meta.len()));
                if files.len() >= MAX_FILES {
                    return files;
                }
            }
        }
    }
    files
}

/// The first path that differs between two snapshots.
fn first_change(before: &Snapshot, now: &Snapshot) -> Option<PathBuf> {
    now.iter()
        .find(|(path, stamp)| before.get(*path) != Some(stamp))
        .map(|(path, _)| path.clone())
        .or_else(|| before.keys().find(|path| !now.contains_key(*path)).cloned())
}

/// Builds (when there is a build command) and tests, then waits for a change; forever.
pub(crate) async fn watch(options: &TestOptions, build: Option<String>) -> ExitCode {
    let dir = match std::env::current_dir() {
        Ok(dir) => dir,
        Err(e) => {
            eprintln!("error: cannot read the current directory: {e}");
            return ExitCode::from(2);
        }
    };
    let build = build.filter(|b| !b.trim().is_empty()).or_else(|| default_build(&dir));
    match &build {
        Some(command) => println!("watch    {}: build with `{command}`, then test", dir.display()),
        None => println!("watch    {}: no build command found (give --build), testing only", dir.display()),
    }
    loop {
        let before = snapshot(&dir);
        let built = match &build {
            None => true,
            Some(command) => {
                println!("build    {command}");
                match tokio::process::Command::new("sh").arg("-c").arg(command).current_dir(&dir).status().await {
                    Ok(status) if status.success() => true,
                    Ok(status) => {
                        println!("build    failed ({status}); fix it and save to retry");
                        false
                    }
                    Err(e) => {
                        println!("build    cannot run sh: {e}");
                        false
                    }
                }
            }
        };
        if built {
            match weir_harness::run(options).await {
                Ok(report) => print!("{report}"),
                Err(e) => println!("error: {e}"),
            }
        }
        println!("watching for changes (Ctrl-C stops)");
        let changed = loop {
            tokio::time::sleep(POLL).await;
            if let Some(path) = first_change(&before, &snapshot(&dir)) {
                break path;
            }
        };
        println!("\nchanged  {}", changed.strip_prefix(&dir).unwrap_or(&changed).display());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_an_addition_and_a_removal_are_seen_and_build_outputs_are_not() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), "a").unwrap();
        std::fs::create_dir_all(dir.path().join("target")).unwrap();
        let before = snapshot(dir.path());
        assert_eq!(first_change(&before, &snapshot(dir.path())), None);
        std::fs::write(dir.path().join("target/out"), "x").unwrap();
        std::fs::write(dir.path().join("plugin.wasm"), "x").unwrap();
        assert_eq!(first_change(&before, &snapshot(dir.path())), None, "build outputs are not watched");
        std::fs::write(dir.path().join("app.py"), "ab").unwrap();
        assert_eq!(first_change(&before, &snapshot(dir.path())), Some(dir.path().join("app.py")));
        let before = snapshot(dir.path());
        std::fs::write(dir.path().join("new.py"), "").unwrap();
        assert_eq!(first_change(&before, &snapshot(dir.path())), Some(dir.path().join("new.py")));
        let before = snapshot(dir.path());
        std::fs::remove_file(dir.path().join("app.py")).unwrap();
        assert_eq!(first_change(&before, &snapshot(dir.path())), Some(dir.path().join("app.py")));
    }

    #[test]
    fn the_build_command_follows_the_scaffold() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(default_build(dir.path()), None);
        std::fs::write(dir.path().join("build.sh"), "").unwrap();
        assert_eq!(default_build(dir.path()).as_deref(), Some("./build.sh"));
        std::fs::write(dir.path().join("package.json"), r#"{"scripts": {"build": "./build.sh"}}"#).unwrap();
        assert_eq!(default_build(dir.path()).as_deref(), Some("npm run build"));
        std::fs::write(dir.path().join("Cargo.toml"), "").unwrap();
        assert_eq!(default_build(dir.path()).as_deref(), Some("cargo build --release --target wasm32-wasip2"));
    }
}
