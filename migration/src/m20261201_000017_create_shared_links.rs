//! `shared_links`: read-only dashboards of one site at `/share/<id>`, made with an admin token
//! (`createSharedLink`). `id` is 128 random bits and is the link itself; `password_hash` an
//! argon2id PHC string, or none for a public link; `cookie_key` signs the cookie a right
//! password earns (per link, so any dashboard sharing the database can check it, and a new
//! link never accepts an old one's cookie); `date_from`/`date_to` bound what the link shows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE shared_links (
    id text PRIMARY KEY,
    site text NOT NULL,
    name text NOT NULL,
    password_hash text,
    cookie_key bytea NOT NULL,
    date_from date,
    date_to date,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz,
    CHECK (date_from IS NULL OR date_to IS NULL OR date_from <= date_to)
);
CREATE INDEX shared_links_site ON shared_links (site);
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.get_connection().execute_unprepared(UP).await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE shared_links")
            .await?;
        Ok(())
    }
}
