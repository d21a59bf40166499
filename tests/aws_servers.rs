//! Local AWS servers for the tests: kinesalite (Kinesis, with real-style 56-digit
//! sequence numbers and splits) and moto (DynamoDB), both installed by
//! scripts/test-tools.sh, started once per test binary on loopback; they exit when the
//! test process does (their stdin closes).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

fn tools_dir() -> std::path::PathBuf {
    std::env::var_os("WEIR_TOOLS_DIR").map_or_else(|| "/var/tmp/weir-tools".into(), Into::into)
}

/// The local servers, for the whole test binary: their stdin is kept open, and they exit
/// when it closes (when the test process ends).
#[derive(Debug)]
pub struct Servers {
    /// Kinesis (kinesalite), `http://127.0.0.1:PORT`.
    pub kinesis: String,
    /// DynamoDB (moto), `http://127.0.0.1:PORT`.
    pub dynamodb: String,
    _children: Vec<Child>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `command` and waits for its first line on stdout.
fn start(mut command: Command, what: &str) -> (Child, String) {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {what} (scripts/test-tools.sh installs it): {e}"));
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(!line.trim().is_empty(), "{what} did not start");
    (child, line.trim().to_owned())
}

/// The local servers, started on first use.
pub fn servers() -> &'static Servers {
    static SERVERS: OnceLock<Servers> = OnceLock::new();
    SERVERS.get_or_init(|| {
        let tools = tools_dir();
        let mut kinesalite = Command::new("node");
        kinesalite.arg("-e").arg(
            "const kinesalite = require(process.argv[1]);\
             const server = kinesalite({createStreamMs: 0, deleteStreamMs: 0, updateStreamMs: 0, shardLimit: 10000});\
             server.listen(0, '127.0.0.1', () => console.log(server.address().port));\
             process.stdin.on('end', () => process.exit(0)); process.stdin.resume();",
        );
        kinesalite.arg(tools.join("kinesalite/node_modules/kinesalite"));
        let (kinesalite, kinesis_port) = start(kinesalite, "kinesalite");
        let port = free_port();
        let mut moto = Command::new(tools.join("test-venv/bin/python"));
        moto.arg("-c")
            .arg(
                "import sys\nfrom moto.server import ThreadedMotoServer\n\
                 server = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False)\n\
                 server.start()\nprint('ready', flush=True)\nsys.stdin.read()\nserver.stop()\n",
            )
            .arg(port.to_string());
        let (moto, _) = start(moto, "moto");
        Servers {
            kinesis: format!("http://127.0.0.1:{kinesis_port}"),
            dynamodb: format!("http://127.0.0.1:{port}"),
            _children: vec![kinesalite, moto],
        }
    })
}
