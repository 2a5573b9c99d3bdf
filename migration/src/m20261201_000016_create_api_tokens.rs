//! `api_tokens`: tokens made through the Stats API (`createToken`): an admin one, or a read one
//! limited to `sites`. Only the SHA-256 of a token is stored; `revoked_at` ends it.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

const UP: &str = "
CREATE TABLE api_tokens (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    hash bytea NOT NULL UNIQUE,
    scope text NOT NULL CHECK (scope IN ('read', 'admin')),
    sites text[] NOT NULL DEFAULT '{}',
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);
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
            .execute_unprepared("DROP TABLE api_tokens")
            .await?;
        Ok(())
    }
}
