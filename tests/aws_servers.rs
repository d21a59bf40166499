//! Local AWS servers for the tests: kinesalite (Kinesis, with real-style 56-digit
//! sequence numbers and splits) and moto (DynamoDB, S3 and Firehose on one port), both installed by
//! scripts/test-tools.sh, started once per test binary on loopback; they exit when the
//! test process does (their stdin closes).

use std::io::{BufRead, BufReader};
use std::path::Path;
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
    /// DynamoDB (moto), `http://127.0.0.1:PORT`: also moto's S3 and Firehose.
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

/// Runs `script` under the test virtualenv's Python with boto3 pointed at moto (`s3`,
/// a client; `sys.argv[1]`, moto's URL; then `args`), and returns what it printed.
pub fn boto3(script: &str, args: &[&str]) -> String {
    let python =
        std::env::var_os("WEIR_TEST_PYTHON").map_or_else(|| tools_dir().join("test-venv/bin/python"), Into::into);
    let prelude = "import sys, os, boto3\n\
                   s3 = boto3.client('s3', endpoint_url=sys.argv[1], region_name='us-east-1',\n\
                   aws_access_key_id='test', aws_secret_access_key='test')\n";
    let output = Command::new(python)
        .arg("-c")
        .arg(format!("{prelude}{script}"))
        .arg(&servers().dynamodb)
        .args(args)
        .output()
        .expect("python with boto3 (scripts/test-tools.sh installs it)");
    assert!(output.status.success(), "boto3: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// Creates the S3 bucket `bucket` in moto.
pub fn create_bucket(bucket: &str) {
    boto3("s3.create_bucket(Bucket=sys.argv[2])", &[bucket]);
}

/// Downloads every object under `prefix` into `into` (keys as paths below it) and
/// returns how many multipart uploads are still in progress in the bucket.
/// Staged commits of a rolling lake (`_staging/`) are skipped, as every lake reader skips
/// them: a roll may remove one between the listing and its download.
pub fn download(bucket: &str, prefix: &str, into: &Path) -> usize {
    let printed = boto3(
        "bucket, prefix, into = sys.argv[2], sys.argv[3], sys.argv[4]\n\
         for page in s3.get_paginator('list_objects_v2').paginate(Bucket=bucket, Prefix=prefix):\n\
         \x20   for o in page.get('Contents', []):\n\
         \x20       rel = o['Key'][len(prefix):].lstrip('/')\n\
         \x20       if rel.startswith('_staging/'): continue\n\
         \x20       path = os.path.join(into, rel)\n\
         \x20       os.makedirs(os.path.dirname(path), exist_ok=True)\n\
         \x20       s3.download_file(bucket, o['Key'], path)\n\
         print(len(s3.list_multipart_uploads(Bucket=bucket).get('Uploads', [])))",
        &[bucket, prefix, &into.display().to_string()],
    );
    printed.trim().parse().unwrap()
}

/// The environment `weir serve` gets for the local servers: credentials through the
/// standard chain, as in production, and no instance-metadata lookups.
pub const AWS_ENV: [(&str, &str); 3] =
    [("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"), ("AWS_EC2_METADATA_DISABLED", "true")];

/// Settings reaching kinesalite and moto directly, with the test credentials.
pub fn local_aws() -> weir_aws::AwsSettings {
    weir_aws::AwsSettings {
        region: Some("us-east-1".into()),
        kinesis_endpoint: Some(servers().kinesis.clone()),
        dynamodb_endpoint: Some(servers().dynamodb.clone()),
        static_credentials: Some(("test".into(), "test".into())),
    }
}

/// Waits until the Kinesis stream `stream` is active.
pub async fn wait_active(clients: &weir_aws::AwsClients, stream: &str) {
    use aws_sdk_kinesis::types::StreamStatus;
    for _ in 0..100 {
        let summary = clients.kinesis.describe_stream_summary().stream_name(stream).send().await.expect("describe");
        if summary.stream_description_summary().map(|s| s.stream_status()) == Some(&StreamStatus::Active) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("stream {stream} did not become active");
}

/// Creates the Kinesis stream `stream` with `shards` shards in kinesalite and waits until
/// it is active.
pub async fn create_kinesis_stream(stream: &str, shards: i32) {
    let clients = local_aws().clients().await;
    clients.kinesis.create_stream().stream_name(stream).shard_count(shards).send().await.expect("create stream");
    wait_active(&clients, stream).await;
}

/// A `[log]` section for Kinesis at `kinesis`, checkpoints in DynamoDB at `dynamodb`,
/// streams named `<prefix><name>`, checkpoints in `table`.
pub fn kinesis_log_section(kinesis: &str, dynamodb: &str, prefix: &str, table: &str) -> String {
    format!(
        "[log]\ntype = \"kinesis\"\nregion = \"us-east-1\"\nendpoint = \"{kinesis}\"\ndynamodb_endpoint = \"{dynamodb}\"\n\
         stream_prefix = \"{prefix}\"\ncheckpoint_table = \"{table}\"\n"
    )
}

/// A `[sinks.KIND]` section (`lake`, `dead-letters`, `warehouse`) at
/// `s3://bucket/prefix` in moto.
pub fn s3_sink_section(kind: &str, bucket: &str, prefix: &str) -> String {
    format!(
        "\n[sinks.{kind}]\ntype = \"{kind}\"\npath = \"s3://{bucket}/{prefix}\"\nregion = \"us-east-1\"\n\
         endpoint = \"{}\"\npath_style = true\n",
        servers().dynamodb
    )
}

/// A throwaway PostgreSQL cluster on a loopback port — the stand-in for Redshift's wire
/// protocol — started once per test binary with Debian's server (scripts/test-tools.sh
/// installs it): `initdb` and `pg_ctl` as the `postgres` user (they refuse root), trust
/// authentication on loopback, the socket in the cluster's own directory. It stops when
/// the test process ends (its supervising shell's stdin closes).
#[derive(Debug)]
pub struct Postgres {
    /// `postgres://weir@127.0.0.1:PORT/postgres`.
    pub url: String,
    /// The cluster's data directory.
    pub data_dir: std::path::PathBuf,
    _child: Child,
}

/// Where Debian installs the server's programs: the newest version there.
fn postgres_bin() -> std::path::PathBuf {
    let mut versions: Vec<u32> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server (scripts/test-tools.sh installs it)")
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    versions.sort_unstable();
    let version = versions.last().expect("a PostgreSQL version under /usr/lib/postgresql");
    std::path::PathBuf::from(format!("/usr/lib/postgresql/{version}/bin"))
}

/// Runs `program args` as the `postgres` user.
fn as_postgres(program: &Path, args: &[&str]) -> Command {
    let mut command = Command::new("runuser");
    command.args(["-u", "postgres", "--"]).arg(program).args(args);
    command
}

/// The local PostgreSQL the tests share, started on first use.
pub fn postgres() -> &'static Postgres {
    static POSTGRES: OnceLock<Postgres> = OnceLock::new();
    POSTGRES.get_or_init(|| Postgres::start("shared"))
}

impl Postgres {
    /// A new cluster of its own (for a test that restarts it, so that the others keep
    /// theirs), named `name` within this test process; it stops when dropped.
    pub fn start(name: &str) -> Postgres {
        let bin = postgres_bin();
        let root = std::env::temp_dir().join(format!("weir-test-postgres-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let status = Command::new("chown").arg("postgres:postgres").arg(&root).status().unwrap();
        assert!(status.success(), "chown the cluster's directory to postgres");
        let data_dir = root.join("data");
        let data = data_dir.to_str().unwrap();
        let output = as_postgres(&bin.join("initdb"), &["-D", data, "-U", "weir", "--auth=trust", "--no-sync"])
            .output()
            .expect("initdb runs");
        assert!(output.status.success(), "initdb: {}", String::from_utf8_lossy(&output.stderr));
        let port = free_port();
        let options = format!("-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", root.display());
        let pg_ctl = bin.join("pg_ctl");
        let script = format!(
            "{ctl} -D {data} -o '{options}' -l {log} -w start >/dev/null && echo ready; cat >/dev/null; {ctl} -D {data} -m immediate stop >/dev/null",
            ctl = pg_ctl.display(),
            log = root.join("log").display(),
        );
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", "sh", "-c", &script]);
        let (child, _) = start(command, "PostgreSQL");
        Postgres { url: format!("postgres://weir@127.0.0.1:{port}/postgres"), data_dir, _child: child }
    }

    /// Restarts the server (`pg_ctl restart -m fast`: open connections are cut, running
    /// transactions rolled back), as a failover or a maintenance restart would.
    pub fn restart(&self) {
        let data = self.data_dir.to_str().unwrap();
        // With its own log file: the server must not hold this call's output pipes.
        let log = self.data_dir.with_file_name("restart.log");
        let args = ["-D", data, "-m", "fast", "-w", "-l", log.to_str().unwrap(), "restart"];
        let output = as_postgres(&postgres_bin().join("pg_ctl"), &args).output().unwrap();
        assert!(output.status.success(), "pg_ctl restart: {}", String::from_utf8_lossy(&output.stderr));
    }
}
