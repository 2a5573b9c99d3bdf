//! The consumer binary: consume until SIGTERM/SIGINT.

fn main() -> std::process::ExitCode {
    settings::launch("consumer", consumer::serve)
}
