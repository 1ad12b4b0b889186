//! The PostgreSQL schema, versioned in the repository (`migrations/postgres/NNNN_name.sql`) and
//! applied at start: each migration not yet recorded in `mfp_schema_migrations` runs in its own
//! transaction, under an advisory lock so that proxies starting together do not race.

use tokio_postgres::Client;

/// Every migration, in order: version, name, SQL.
pub(super) const MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "documents",
        include_str!("../../../migrations/postgres/0001_documents.sql"),
    ),
    (
        2,
        "cluster",
        include_str!("../../../migrations/postgres/0002_cluster.sql"),
    ),
];

/// Advisory lock key held while migrating (any constant shared by every proxy).
const MIGRATION_LOCK: i64 = 0x6d66_705f_6d69_6772; // "mfp_migr"

/// Applies the migrations the database lacks; returns how many were applied. Fails when the
/// database has a version newer than this program knows (a downgrade would corrupt data).
pub(super) async fn apply(client: &mut Client) -> Result<usize, MigrationError> {
    // The lock is taken before the bookkeeping table is created: two proxies creating it at the
    // same instant on a fresh database collide in PostgreSQL's catalog (a unique violation on
    // `pg_type`) even with IF NOT EXISTS. It is a transaction lock, released by the commit.
    let txn = client.transaction().await?;
    txn.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    txn.batch_execute(
        "CREATE TABLE IF NOT EXISTS mfp_schema_migrations (\
             version integer PRIMARY KEY, \
             name text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let mut applied = 0;
    let newest: Option<i32> = txn
        .query_one("SELECT max(version) FROM mfp_schema_migrations", &[])
        .await?
        .get(0);
    let newest = newest.unwrap_or(0);
    let known = MIGRATIONS.last().map_or(0, |(version, _, _)| *version);
    if newest > known {
        return Err(MigrationError::TooNew {
            found: newest,
            known,
        });
    }
    for (version, name, sql) in MIGRATIONS {
        if *version <= newest {
            continue;
        }
        txn.batch_execute(sql).await?;
        txn.execute(
            "INSERT INTO mfp_schema_migrations (version, name) VALUES ($1, $2)",
            &[version, name],
        )
        .await?;
        tracing::info!(version, name, "PostgreSQL schema migrated");
        applied += 1;
    }
    txn.commit().await?;
    Ok(applied)
}

/// Why the schema could not be brought up to date.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// A statement failed.
    #[error("schema migration failed")]
    Postgres(#[from] tokio_postgres::Error),
    /// The database was migrated by a newer version of the proxy.
    #[error(
        "the database schema is at version {found}, newer than this proxy knows ({known}); \
         run the newer proxy or restore a matching database"
    )]
    TooNew {
        /// The version found in the database.
        found: i32,
        /// The newest this program has.
        known: i32,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_match_the_file_names() {
        let mut previous = 0;
        for (version, name, sql) in MIGRATIONS {
            assert!(*version > previous, "version {version} after {previous}");
            assert!(!name.is_empty() && !sql.trim().is_empty());
            previous = *version;
        }
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgres");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".sql"))
            .collect();
        files.sort();
        let expected: Vec<String> = MIGRATIONS
            .iter()
            .map(|(version, name, _)| format!("{version:04}_{name}.sql"))
            .collect();
        assert_eq!(
            files, expected,
            "every file in migrations/postgres is listed, in order"
        );
    }
}
