//! The dashboard binary: the Stats API on `dashboard.port` (8081) until SIGTERM/SIGINT.

fn main() -> std::process::ExitCode {
    settings::launch("dashboard", dashboard::serve)
}
