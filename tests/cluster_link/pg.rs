//! The temporary PostgreSQL of these tests ([`crate::common::postgres`]), with what the cluster
//! link's tests add: a client of their own and the schema applied as the store applies it.

use std::path::{Path, PathBuf};

pub(crate) use crate::common::postgres::Postgres as Pg;

/// A test's own access to the database.
pub(crate) trait PgClient {
    /// A client of the test's own.
    async fn client(&self) -> tokio_postgres::Client;
    /// Applies every file of migrations/postgres in order (what the store does at start).
    async fn migrate(&self);
}

impl PgClient for Pg {
    async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    async fn migrate(&self) {
        let client = self.client().await;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        for file in files {
            client
                .batch_execute(&std::fs::read_to_string(&file).unwrap())
                .await
                .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        }
    }
}
