//! The producer binary: the GraphQL ingest server until SIGTERM/SIGINT.

fn main() -> std::process::ExitCode {
    settings::launch("producer", producer::serve)
}
