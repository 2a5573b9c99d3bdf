//! The consumer binary: consume until SIGTERM/SIGINT. `consumer rebuild` recomputes visits and
//! rollups from the stored events; `consumer rebuild --verify` checks them and changes nothing.

use consumer::rebuild::Mode;

fn main() -> std::process::ExitCode {
    consumer::arena::one_malloc_arena();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match args.as_slice() {
        [] => settings::launch("consumer", consumer::serve),
        ["rebuild"] => settings::launch("consumer rebuild", |s, _| {
            consumer::rebuild_command(s, Mode::Replace)
        }),
        ["rebuild", "--verify"] => settings::launch("consumer rebuild", |s, _| {
            consumer::rebuild_command(s, Mode::Verify)
        }),
        _ => {
            eprintln!("usage: consumer [rebuild [--verify]]");
            std::process::ExitCode::from(2)
        }
    }
}
