//! The migration CLI (sea-orm-cli's `migrate` subcommands: `up`, `down`, `status`, `fresh`, …).
//! The database is `-u URL`, else `DATABASE_URL` (what `sea-orm-cli migrate` passes), else the
//! `database.url` of the layered settings (`config/`, `APP__DATABASE__URL`), so a plain
//! `cargo run -p migration -- up` migrates the database the binaries use.

use std::process::ExitCode;

use sea_orm_migration::prelude::*;
use settings::ExposeSecret;

fn main() -> ExitCode {
    if std::env::var_os("DATABASE_URL").is_none() {
        match settings::Settings::load() {
            // Still single-threaded: nothing else reads the environment meanwhile.
            Ok(s) => std::env::set_var("DATABASE_URL", s.database.url.expose_secret()),
            Err(e) => {
                eprintln!("migration: error: {:#}", anyhow::Error::new(e));
                return ExitCode::FAILURE;
            }
        }
    }
    match tokio::runtime::Runtime::new() {
        Ok(runtime) => {
            runtime.block_on(cli::run_cli(migration::Migrator));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("migration: error: starting the async runtime: {e}");
            ExitCode::FAILURE
        }
    }
}
