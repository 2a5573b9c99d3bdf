//! The consumer binary: settings, logging, then consume until SIGTERM/SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use settings::Settings;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, no backtrace: the chain of causes joined by ": ".
            eprintln!("consumer: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let settings = Settings::load()?;
    settings.log.init()?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let shutdown = settings::shutdown_signal().context("installing signal handlers")?;
        let consumer = consumer::Consumer::build(settings)
            .await
            .context("starting the consumer")?;
        tracing::info!(
            metrics_port = consumer.metrics_port(),
            owner = %consumer.owner(),
            "consumer started; metrics at /metrics"
        );
        consumer.run_until(shutdown).await.context("consuming")
    })
}
