//! A Ballista cluster inside this process — one scheduler and its executors on 127.0.0.1 — to
//! try the Ballista engine on one machine, for the engine tests and for benchmarks
//! (`styrkort cluster`). A real cluster runs Ballista's own `ballista-scheduler` and
//! `ballista-executor` binaries on its machines (README, "Running on a cluster").

use std::sync::Arc;

use ballista_core::extension::{
    ballista_aggregate_functions, ballista_scalar_functions, ballista_window_functions,
};
use ballista_core::object_store::{
    runtime_env_with_s3_support, session_config_with_s3_support, session_state_with_s3_support,
};
use ballista_core::serde::BallistaCodec;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use datafusion::execution::SessionStateBuilder;
use tokio::runtime::Runtime;

/// A running cluster. Each node has its own runtime, so one can be stopped on its own (as a
/// machine that dies); dropping the cluster stops them all.
pub struct LocalCluster {
    port: u16,
    scheduler: Option<Runtime>,
    executors: Vec<Option<Runtime>>,
}

fn runtime() -> Result<Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

impl LocalCluster {
    /// Starts a scheduler and `executors` executors with `slots` task slots each.
    pub fn start(executors: usize, slots: usize) -> Result<LocalCluster, String> {
        let scheduler = runtime()?;
        // Scheduler and executors read object-store sources (`s3://…`) as Ballista's own
        // binaries do: a store per bucket from the node's AWS_* variables.
        let addr = scheduler
            .block_on(
                ballista_scheduler::standalone::new_standalone_scheduler_with_builder(
                    Arc::new(session_state_with_s3_support),
                    Arc::new(session_config_with_s3_support),
                    BallistaCodec::default(),
                ),
            )
            .map_err(|e| format!("cannot start a Ballista scheduler: {e}"))?;
        let port = addr.port();
        let mut cluster = LocalCluster {
            port,
            scheduler: Some(scheduler),
            executors: Vec::new(),
        };
        for _ in 0..executors {
            let node = runtime()?;
            node.block_on(async {
                let url = format!("http://localhost:{port}");
                let mut tries = 0;
                let scheduler = loop {
                    match SchedulerGrpcClient::connect(url.clone()).await {
                        Ok(client) => break client,
                        Err(e) if tries >= 50 => {
                            return Err(format!("cannot reach the scheduler at {url}: {e}"));
                        }
                        Err(_) => {
                            tries += 1;
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                        }
                    }
                };
                let functions = SessionStateBuilder::new()
                    .with_default_features()
                    .with_scalar_functions(ballista_scalar_functions())
                    .with_aggregate_functions(ballista_aggregate_functions())
                    .with_window_functions(ballista_window_functions())
                    .build();
                ballista_executor::new_standalone_executor_from_builder(
                    scheduler,
                    slots.max(1),
                    Arc::new(session_config_with_s3_support),
                    Arc::new(runtime_env_with_s3_support),
                    BallistaCodec::default(),
                    (&functions).into(),
                )
                .await
                .map_err(|e| format!("cannot start a Ballista executor: {e}"))
            })?;
            cluster.executors.push(Some(node));
        }
        Ok(cluster)
    }

    /// Where clients reach the scheduler: `ballista://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("ballista://127.0.0.1:{}", self.port)
    }

    /// Stops executor `k` at once, its running tasks with it (a machine that dies).
    pub fn kill_executor(&mut self, k: usize) {
        if let Some(node) = self.executors.get_mut(k).and_then(Option::take) {
            node.shutdown_background();
        }
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for node in self.executors.iter_mut().filter_map(Option::take) {
            node.shutdown_background();
        }
        if let Some(s) = self.scheduler.take() {
            s.shutdown_background();
        }
    }
}
