//! A throw-away PostgreSQL server for these tests: `initdb` into a temporary directory (as the
//! `postgres` user when running as root, which initdb refuses), its own port on 127.0.0.1, its
//! unix socket inside the directory, and the schema of migrations/postgres applied. There is no
//! skipping: without PostgreSQL binaries the test fails and says what is missing.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

/// A running server; stopped and deleted on drop.
pub(crate) struct Pg {
    dir: TempDir,
    bin: PathBuf,
    port: u16,
}

fn bin_dir() -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    found.retain(|dir| dir.join("initdb").exists());
    found.sort();
    found.pop().unwrap_or_else(|| {
        panic!("PostgreSQL is required by these tests: no /usr/lib/postgresql/*/bin/initdb (install the postgresql package)")
    })
}

fn as_postgres(bin: &Path, tool: &str) -> Command {
    // initdb and postgres refuse root: root hands the work to the `postgres` user.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0"))
        .unwrap_or(false);
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        cmd
    } else {
        Command::new(bin.join(tool))
    }
}

fn run(mut cmd: Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pg {
    /// Creates, starts and migrates a server.
    pub(crate) fn start() -> Pg {
        let bin = bin_dir();
        let dir = tempfile::Builder::new().prefix("mfp-pg").tempdir().unwrap();
        let _ = Command::new("chown")
            .args(["-R", "postgres"])
            .arg(dir.path())
            .status();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut init = as_postgres(&bin, "initdb");
        init.args(["--auth=trust", "-U", "mfp", "-D"])
            .arg(dir.path().join("data"));
        run(init, "initdb");
        let pg = Pg { dir, bin, port };
        pg.up();
        pg
    }

    /// Starts the server (again).
    pub(crate) fn up(&self) {
        let mut ctl = as_postgres(&self.bin, "pg_ctl");
        ctl.arg("-D").arg(self.dir.path().join("data"));
        ctl.arg("-l").arg(self.dir.path().join("log"));
        ctl.arg("-o").arg(format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        ));
        ctl.args(["-w", "start"]);
        run(ctl, "pg_ctl start");
    }

    /// Stops the server at once (as a crash or a restart would).
    pub(crate) fn down(&self) {
        let mut ctl = as_postgres(&self.bin, "pg_ctl");
        ctl.arg("-D").arg(self.dir.path().join("data"));
        ctl.args(["-m", "immediate", "-w", "stop"]);
        run(ctl, "pg_ctl stop");
    }

    /// The connection URL.
    pub(crate) fn url(&self) -> String {
        format!("postgres://mfp@127.0.0.1:{}/postgres", self.port)
    }

    /// A client of the test's own, with the schema applied on first use.
    pub(crate) async fn client(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.url(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(connection);
        client
    }

    /// Applies every file of migrations/postgres in order (what the store does at start).
    pub(crate) async fn migrate(&self) {
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

impl Drop for Pg {
    fn drop(&mut self) {
        let mut ctl = as_postgres(&self.bin, "pg_ctl");
        ctl.arg("-D").arg(self.dir.path().join("data"));
        ctl.args(["-m", "immediate", "-w", "stop"]);
        let _ = ctl.output();
    }
}
