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
    init_tracing(&settings.log.filter)?;
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let app = producer::Application::build(settings)
            .await
            .context("starting the producer")?;
        tracing::info!(
            port = app.port(),
            "producer listening; GraphiQL at /, GraphQL at /query"
        );
        app.run_until_stopped().await.context("serving HTTP")
    })
}

fn init_tracing(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .with_context(|| format!("invalid setting log.filter {filter:?}"))?;
    // Colours only on a terminal: `make up` writes these lines to log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .init();
    Ok(())
}
