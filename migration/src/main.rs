//! The migration CLI (sea-orm-cli's `migrate` subcommands): reads `DATABASE_URL` or `-u URL`.

use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
