//! Running the plugin step on a Ballista cluster: codecs that carry it between the
//! planner, the scheduler and the executors, and the scheduler and executor processes
//! (`weir batch scheduler`, `weir batch executor`).
//!
//! The planner sends the plan with the step as a table (its [`ChainSpec`] as JSON); the
//! scheduler plans it into the step's execution plan and hands its partitions to the
//! executors, which load the pinned components from their registry (refusing any other
//! digest) with the limits of their configuration — the same file the host runs — and
//! read the raw archive from the lake it names. Ballista's own nodes go through
//! Ballista's codecs.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionContext;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};

use ballista_core::config::TaskSchedulingPolicy;

use crate::chain_plan::{ChainEnv, ChainExec, ChainSpec, ChainTable};
use crate::cluster_tls::ClusterTls;
use crate::error::BatchError;

/// Marks a weir plan node in a codec's bytes. No protobuf message starts with 0xff
/// (field 31 of wire type 7 does not exist), so it cannot be taken for Ballista's.
const MAGIC: &[u8] = b"\xffweir-plugin-step/1\0";

fn encode_spec(spec: &ChainSpec, buf: &mut Vec<u8>) -> DfResult<()> {
    buf.extend_from_slice(MAGIC);
    serde_json::to_writer(buf, spec)
        .map_err(|e| DataFusionError::Internal(format!("cannot encode the plugin step: {e}")))
}

fn decode_spec(buf: &[u8]) -> Option<DfResult<Arc<ChainSpec>>> {
    let json = buf.strip_prefix(MAGIC)?;
    Some(serde_json::from_slice(json).map(Arc::new).map_err(|e| {
        DataFusionError::Internal(format!("cannot decode the plugin step (a weir of another version?): {e}"))
    }))
}

/// The logical codec of the planner and the scheduler: the plugin step's table, else
/// Ballista's.
#[derive(Debug, Default)]
pub struct WeirLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for WeirLogicalCodec {
    fn try_decode(&self, buf: &[u8], inputs: &[LogicalPlan], ctx: &TaskContext) -> DfResult<Extension> {
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> DfResult<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: arrow_schema::SchemaRef,
        ctx: &TaskContext,
    ) -> DfResult<Arc<dyn TableProvider>> {
        match decode_spec(buf) {
            Some(spec) => Ok(Arc::new(ChainTable { spec: spec?, env: None })),
            None => self.inner.try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> DfResult<()> {
        match node.downcast_ref::<ChainTable>() {
            Some(table) => encode_spec(&table.spec, buf),
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }
}

/// The physical codec: the plugin step's plan, else Ballista's. An executor's codec
/// holds what running the step needs; the scheduler's only passes plans on.
#[derive(Debug, Default)]
pub struct WeirPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
    env: Option<Arc<ChainEnv>>,
}

impl WeirPhysicalCodec {
    /// The codec of an executor that runs plugin steps with `env`.
    pub fn executing(env: ChainEnv) -> Self {
        Self { inner: BallistaPhysicalExtensionCodec::default(), env: Some(Arc::new(env)) }
    }
}

impl PhysicalExtensionCodec for WeirPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match decode_spec(buf) {
            Some(spec) => {
                let [input] = inputs else {
                    return Err(DataFusionError::Internal("the plugin step has one input".into()));
                };
                Ok(Arc::new(ChainExec::new(spec?, self.env.clone(), input.clone())))
            }
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> DfResult<()> {
        match node.downcast_ref::<ChainExec>() {
            Some(exec) => encode_spec(&exec.spec, buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }
}

/// A session that plans on this process and runs on the Ballista scheduler at `url`
/// (`df://HOST:PORT`), in `partitions` partitions; over mutual TLS when `tls` is given.
///
/// # Errors
/// A malformed URL.
pub(crate) async fn remote_context(
    url: &str,
    partitions: usize,
    tls: Option<&ClusterTls>,
) -> Result<SessionContext, BatchError> {
    use ballista::prelude::{SessionConfigExt as _, SessionContextExt as _};
    use datafusion::execution::SessionStateBuilder;
    // No round-robin repartition over the plugin step: on a cluster each task would run
    // every partition of the step below it again.
    let mut config = datafusion::prelude::SessionConfig::new_with_ballista()
        .with_target_partitions(partitions.max(1))
        .with_round_robin_repartition(false)
        .with_ballista_logical_extension_codec(Arc::new(WeirLogicalCodec::default()))
        .with_ballista_physical_extension_codec(Arc::new(WeirPhysicalCodec::default()));
    if let Some(tls) = tls {
        config = config.with_ballista_override_create_grpc_client_endpoint(tls.endpoint_override());
    }
    let state = SessionStateBuilder::new().with_config(config).with_default_features().build();
    SessionContext::remote_with_state(url, state).await.map_err(|e| {
        BatchError::Invalid(format!("cluster {url}: {e}; write df://HOST:PORT of a `weir batch scheduler`"))
    })
}

/// How executors get tasks: pushed by the scheduler, which connects to each executor's
/// gRPC service, or — with TLS, as that service cannot take a certificate — polled by
/// the executors.
fn scheduling_policy(tls: Option<&ClusterTls>) -> TaskSchedulingPolicy {
    match tls {
        Some(_) => TaskSchedulingPolicy::PullStaged,
        None => TaskSchedulingPolicy::PushStaged,
    }
}

/// Runs a Ballista scheduler that knows weir's plugin step on `bind` until the process
/// ends; with `tls`, it serves over TLS and accepts only clients with a certificate of the
/// cluster's CA, and executors poll it for tasks.
///
/// # Errors
/// The address cannot be bound, or the scheduler fails.
pub async fn serve_scheduler(bind: SocketAddr, tls: Option<ClusterTls>) -> Result<(), BatchError> {
    use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
    let failed = |e: &dyn std::fmt::Display| BatchError::Engine(format!("scheduler on {bind}: {e}"));
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        external_host: bind.ip().to_string(),
        bind_port: bind.port(),
        scheduling_policy: scheduling_policy(tls.as_ref()),
        override_logical_codec: Some(Arc::new(WeirLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(WeirPhysicalCodec::default())),
        override_create_grpc_client_endpoint: tls.as_ref().map(ClusterTls::endpoint_override),
        ..Default::default()
    };
    let cluster =
        BallistaCluster::new_from_config(&config).await.map_err(|e| BatchError::Engine(format!("scheduler: {e}")))?;
    let Some(tls) = tls else {
        return ballista_scheduler::scheduler_process::start_server(cluster, bind, Arc::new(config))
            .await
            .map_err(|e| failed(&e));
    };
    // Served here rather than by `start_server`, whose server takes no certificate. What
    // it adds besides the gRPC service — REST and health routes, a Flight proxy — weir
    // does not use.
    config.validate().map_err(|e| failed(&e))?;
    let (decoding, encoding) =
        (config.grpc_server_max_decoding_message_size, config.grpc_server_max_encoding_message_size);
    let scheduler = ballista_scheduler::scheduler_process::create_scheduler::<LogicalPlanNode, PhysicalPlanNode>(
        cluster,
        Arc::new(config),
    )
    .await
    .map_err(|e| failed(&e))?;
    let service = SchedulerGrpcServer::new(scheduler)
        .max_decoding_message_size(decoding as usize)
        .max_encoding_message_size(encoding as usize);
    ballista_core::utils::create_grpc_server(&ballista_core::utils::GrpcServerConfig::default())
        .tls_config(tls.server_config())
        .map_err(|e| failed(&e))?
        .add_service(service)
        .serve(bind)
        .await
        .map_err(|e| failed(&e))
}

/// Where an executor listens and which scheduler it serves.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler, `HOST:PORT`.
    pub scheduler: (String, u16),
    /// The address the executor's Flight service (shuffle data) listens on; its gRPC
    /// service takes the next port.
    pub bind: SocketAddr,
    /// The host name other processes reach it by (default the bind address).
    pub external_host: Option<String>,
    /// Tasks at once (default the cores).
    pub concurrent_tasks: Option<usize>,
    /// Where shuffle files go (default a temporary directory).
    pub work_dir: Option<std::path::PathBuf>,
    /// Mutual TLS with the scheduler and the other processes of the cluster.
    pub tls: Option<ClusterTls>,
}

/// Runs a Ballista executor that runs weir's plugin steps with `env` until the process
/// ends or the scheduler stops it.
///
/// # Errors
/// The addresses cannot be bound, the scheduler cannot be reached, or the executor fails.
pub async fn serve_executor(options: ExecutorOptions, env: ChainEnv) -> Result<(), BatchError> {
    use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
    let grpc_port = options.bind.port().checked_add(1).ok_or_else(|| {
        BatchError::Invalid("the executor's port must leave the next one for its gRPC service".into())
    })?;
    let mut config = ExecutorProcessConfig {
        bind_host: options.bind.ip().to_string(),
        external_host: Some(options.external_host.unwrap_or_else(|| options.bind.ip().to_string())),
        port: options.bind.port(),
        grpc_port,
        scheduler_host: options.scheduler.0.clone(),
        scheduler_port: options.scheduler.1,
        scheduler_connect_timeout_seconds: 30,
        task_scheduling_policy: scheduling_policy(options.tls.as_ref()),
        work_dir: options.work_dir.map(|dir| dir.display().to_string()),
        override_logical_codec: Some(Arc::new(WeirLogicalCodec::default())),
        override_physical_codec: Some(Arc::new(WeirPhysicalCodec::executing(env))),
        print_thread_info: false,
        ..Default::default()
    };
    if let Some(tls) = &options.tls {
        with_executor_tls(&mut config, tls);
    }
    if let Some(tasks) = options.concurrent_tasks {
        config.vcores = tasks.max(1);
    }
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| BatchError::Engine(format!("executor on {}: {e}", options.bind)))
}

/// An executor's TLS: its connections to the scheduler and to other executors (shuffle
/// reads, through the tasks' session configuration) carry its certificate, and its Flight
/// service takes only peers with one. In pull mode its gRPC service is not started.
fn with_executor_tls(config: &mut ballista_executor::executor_process::ExecutorProcessConfig, tls: &ClusterTls) {
    use ballista::prelude::SessionConfigExt as _;
    use ballista_core::error::BallistaError;
    use ballista_executor::flight_service::BallistaFlightService;
    let endpoint = tls.endpoint_override();
    config.override_create_grpc_client_endpoint = Some(endpoint.clone());
    config.override_config_producer = Some(Arc::new(move || {
        datafusion::prelude::SessionConfig::new_with_ballista()
            .with_ballista_override_create_grpc_client_endpoint(endpoint.clone())
    }));
    let server_tls = tls.server_config();
    let (decoding, encoding) =
        (config.grpc_max_decoding_message_size as usize, config.grpc_max_encoding_message_size as usize);
    config.override_arrow_flight_service = Some(Arc::new(move |work_dir, address, mut shutdown, grpc| {
        let server_tls = server_tls.clone();
        tokio::spawn(async move {
            let service =
                arrow_flight::flight_service_server::FlightServiceServer::new(BallistaFlightService::new(work_dir))
                    .max_decoding_message_size(decoding)
                    .max_encoding_message_size(encoding);
            ballista_core::utils::create_grpc_server(&grpc)
                .tls_config(server_tls)
                .map_err(BallistaError::TonicError)?
                .add_service(service)
                .serve_with_shutdown(address, shutdown.recv())
                .await
                .map_err(BallistaError::TonicError)
        })
    }));
}
