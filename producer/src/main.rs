//! The producer binary: settings, logging, then the GraphQL ingest server until SIGTERM/SIGINT.

use std::process::ExitCode;

use anyhow::Context;
use settings::Settings;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One readable line, no backtrace: the chain of causes joined by ": ".
            eprintln!("producer: error: {e:#}");
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
        let app = producer::Application::build(settings)
            .await
            .context("starting the producer")?;
        tracing::info!(
            port = app.port(),
            "producer listening; GraphiQL at /, GraphQL at /query"
        );
        app.run_until(shutdown).await.context("serving HTTP")
    })
}
