//! Start-up: what every binary does before its own work (settings, logging, the metrics
//! recorder, signal handlers, a runtime), and how it reports a failure: one line.

use crate::{telemetry, LogSettings, Settings, SettingsError};

impl LogSettings {
    /// Installs the global tracing subscriber with this filter (for binaries; call once).
    pub fn init(&self) -> Result<(), SettingsError> {
        let filter = tracing_subscriber::EnvFilter::try_new(&self.filter).map_err(|e| {
            SettingsError::Invalid {
                key: "log.filter",
                reason: e.to_string(),
            }
        })?;
        // Colours only on a terminal: `make up` writes these lines to log files.
        let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
        tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_ansi(ansi)
            .init();
        Ok(())
    }
}

/// What every binary does: load the settings, install logging and the signal handlers, start a
/// runtime, then run `serve` until it returns. Any error ends the process with one line
/// (`NAME: error: …` with its causes), never a panic backtrace.
pub fn launch<S, F>(name: &str, serve: S) -> std::process::ExitCode
where
    S: FnOnce(Settings, std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>) -> F,
    F: std::future::Future<Output = anyhow::Result<()>>,
{
    let run = || -> anyhow::Result<()> {
        let settings = Settings::load()?;
        settings.log.init()?;
        telemetry::init();
        let runtime = tokio::runtime::Runtime::new()
            .map_err(|e| anyhow::anyhow!("starting the async runtime: {e}"))?;
        runtime.block_on(async {
            let shutdown = shutdown_signal()
                .map_err(|e| anyhow::anyhow!("installing signal handlers: {e}"))?;
            serve(settings, Box::pin(shutdown)).await
        })
    };
    match run() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Registers SIGTERM and SIGINT handlers now, and returns a future that resolves on either.
/// Call it first thing in `main`, so a signal during start-up is not fatal either.
pub fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {},
            _ = int.recv() => {},
        }
    })
}
