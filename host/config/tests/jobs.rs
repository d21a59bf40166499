//! `[[jobs]]`: defaults taken from the stream, and every mistake reported with its key.

use weir_config::{LevelCompute, PipelineConfig};
use weir_connectors::sink_types;

const STREAM: &str = r#"
[plugins.orders-parser]
path = "orders_parser.wasm"

[plugins.restaurant-enricher]
path = "restaurant_enricher.wasm"

[plugins.restaurant-stats]
path = "restaurant_stats.wasm"

[sinks.lake]
type = "lake"

[sinks.dead-letters]
type = "dead-letters"

[sinks.warehouse]
type = "warehouse"

[[streams]]
name = "orders"
parser = "orders-parser"
enrichers = ["restaurant-enricher"]

[streams.aggregator]
plugin = "restaurant-stats"
window = "15m"
"#;

fn problems(text: &str) -> Vec<String> {
    let errors = PipelineConfig::parse(text, "orders.toml", sink_types()).expect_err("refused");
    errors.to_string().lines().map(str::to_owned).collect()
}

#[test]
fn a_job_takes_its_plugins_and_lake_from_the_stream() {
    let text = format!(
        "{STREAM}
[[jobs]]
name = \"orders-daily\"
stream = \"orders\"
schedule = \"30 1 * * *\"

[[jobs.levels]]
name = \"restaurant-window\"
aggregator = \"restaurant-stats\"
window = \"15m\"
sinks = [\"warehouse\"]
replaces_stream_aggregates = true

[[jobs.levels]]
name = \"zone-hour\"
sql = \"SELECT zone AS _key, count(*) AS orders FROM events GROUP BY 1\"
sinks = [\"lake\"]
"
    );
    let config = PipelineConfig::parse(&text, "orders.toml", sink_types()).unwrap();
    let job = config.job("orders-daily").unwrap();
    assert_eq!(job.input, "lake");
    assert_eq!(job.parser, "orders-parser");
    assert_eq!(job.enrichers, ["restaurant-enricher"]);
    assert_eq!(job.dead_letters, ["dead-letters"]);
    assert_eq!(job.period.0, std::time::Duration::from_secs(86_400));
    assert_eq!(job.schedule.as_ref().unwrap().as_str(), "30 1 * * *");
    assert!(job.levels[0].replaces_stream_aggregates);
    assert!(matches!(&job.levels[1].compute, LevelCompute::Sql(sql) if sql.starts_with("SELECT zone")));
    assert_eq!(job.levels[1].source(&job.name), "orders-daily.zone-hour");
}

#[test]
fn every_mistake_of_a_job_is_reported_with_its_key() {
    let text = format!(
        "{STREAM}
[[jobs]]
name = \"Orders Daily\"
stream = \"payments\"
schedule = \"30 25 * * *\"

[[jobs.levels]]
name = \"both\"
sql = \"SELECT 1\"
aggregator = \"restaurant-stats\"
sinks = [\"lake\"]

[[jobs]]
name = \"replaces\"
stream = \"orders\"

[[jobs.levels]]
name = \"other-window\"
aggregator = \"restaurant-stats\"
window = \"1h\"
sinks = [\"dead-letters\"]
replaces_stream_aggregates = true

[[jobs.levels]]
name = \"nothing\"
sinks = []

[[jobs.tables]]
name = \"events\"
path = \"../etc\"
format = \"csv\"

[[jobs.tables]]
name = \"customers\"
reference = \"customers\"

[[jobs.tables]]
name = \"stores\"
reference = \"stores\"
path = \"events/stream=stores\"

[[jobs.tables]]
name = \"rates\"
reference = \"rates\"

[reference.stores]
file = \"/dev/null\"

[reference.rates]
type = \"s3\"
path = \"s3://bucket/rates.json\"
"
    );
    let problems = problems(&text);
    let expect = [
        "jobs[0].name: \"Orders Daily\" is not a valid job name",
        "jobs[0].stream: unknown stream \"payments\"; defined streams are: orders",
        "jobs[0].schedule: the hour field \"25\"",
        "jobs[0].levels[0].sql: a level has either sql or aggregator, not both",
        "jobs[1].levels[0].sinks[0]: sink \"dead-letters\" is a dead-letters sink, which does not take aggregates",
        "jobs[1].levels[0].replaces_stream_aggregates: only a level that recomputes the stream's aggregates can replace them",
        "jobs[1].levels[1]: the level computes nothing",
        "jobs[1].tables[0].name: \"events\" cannot name a table",
        "jobs[1].tables[0].path: \"../etc\" is not a prefix inside the lake",
        "jobs[1].tables[0].format: unknown format \"csv\"",
        "jobs[1].tables[1].reference: no [reference.customers]; the reference tables are: rates, stores",
        "jobs[1].tables[2].reference: give `path` (a lake prefix) or `reference` (a reference table), not both",
        "jobs[1].tables[3].reference: reference table \"rates\" is not of type file",
    ];
    for wanted in expect {
        assert!(problems.iter().any(|p| p.contains(wanted)), "missing {wanted:?} in:\n{}", problems.join("\n"));
    }
}

#[test]
fn a_job_without_levels_or_a_lake_is_refused() {
    let text =
        STREAM.replace("[sinks.lake]\ntype = \"lake\"\n", "") + "\n[[jobs]]\nname = \"empty\"\nstream = \"orders\"\n";
    let problems = problems(&text);
    assert!(problems.iter().any(|p| p.contains("jobs[0].levels: the job computes nothing")), "{problems:?}");
    assert!(
        problems.iter().any(|p| p.contains("jobs[0].input: the stream routes its raw records to no lake sink")),
        "{problems:?}"
    );
}
