//! Runs a throwaway PostgreSQL cluster for one test (Debian's `postgresql` package): the shared
//! store of several proxies. Each cluster has its own temporary data directory, its own port
//! (from the test port scheme, see [`super::ports`]), its unix socket inside that directory and
//! listens on 127.0.0.1 only, so it never meets a system cluster (port 5432) the package may run.
//!
//! `initdb` refuses to run as root: when the tests run as root, the server programs run as the
//! `postgres` system user (`runuser -u postgres --`) and the temporary directory is handed to that
//! user. Authentication is `trust` for the superuser `mfp`; the tests connect over TCP as `mfp`.
//! A missing installation fails the test with an install hint; it never passes silently.

use std::fs::File;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::ports::CallPorts;

/// The superuser `initdb` creates, and the user in [`Postgres::url`].
pub const USER: &str = "mfp";
/// The database [`Postgres::start`] creates.
pub const DATABASE: &str = "metaflow";
/// How long PostgreSQL may take to accept connections after `pg_ctl start`.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running (or stopped, see [`Postgres::stop`]) temporary PostgreSQL cluster; stopped
/// (immediate mode) and removed on drop, its log printed if the test is failing.
pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The port block the cluster's port comes from, held so no other test takes the port,
    /// also while the server is stopped.
    ports: CallPorts,
    as_postgres_user: bool,
    running: bool,
}

impl Postgres {
    /// Creates a cluster (`initdb --auth=trust -U mfp`) in a temporary directory, starts it on
    /// 127.0.0.1 with a port of its own, waits until it accepts connections and creates the
    /// database [`DATABASE`]. Panics, with the server log, when any step fails.
    pub fn start() -> Postgres {
        let bin = find_bin_dir();
        let as_postgres_user = is_root();
        let dir = tempfile::tempdir().unwrap();
        if as_postgres_user {
            chown_to_postgres(dir.path());
        }
        let ports = CallPorts::reserve();
        let mut postgres = Postgres {
            bin,
            dir,
            ports,
            as_postgres_user,
            running: false,
        };
        postgres.init();
        postgres.start_again();
        let created = Command::new(postgres.bin.join("createdb"))
            .args(postgres.client_args())
            .arg(DATABASE)
            .output()
            .unwrap_or_else(|err| panic!("cannot run createdb: {err}"));
        postgres.assert_ok(&created, "createdb");
        postgres
    }

    /// The URL the proxies are given (`--store`): `postgres://mfp@127.0.0.1:PORT/metaflow`.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/{DATABASE}", self.port())
    }

    /// The TCP port the server listens on (127.0.0.1), the same across restarts.
    pub fn port(&self) -> u16 {
        self.ports.proxy_sip
    }

    /// Whether the server was started and not stopped since.
    pub fn is_running(&self) -> bool {
        self.running
    }

    /// Stops the server (`pg_ctl stop -m fast`: sessions are disconnected, a checkpoint is
    /// written) and waits until it is down. The data directory and the port stay reserved for
    /// [`Postgres::start_again`].
    pub fn stop(&mut self) {
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "30"]);
        self.assert_ok(&out, "pg_ctl stop");
        self.running = false;
        assert!(
            !self.accepts_connections(),
            "PostgreSQL still accepts connections on 127.0.0.1:{} after pg_ctl stop",
            self.port()
        );
    }

    /// Starts the server on its data directory and port (after [`Postgres::stop`], or the first
    /// time) and waits until it accepts TCP connections.
    pub fn start_again(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port(),
            self.socket_dir().display()
        );
        let log = self.log_path();
        let out = self.pg_ctl(&[
            "start",
            "-w",
            "-t",
            "30",
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
        ]);
        self.assert_ok(&out, "pg_ctl start");
        let deadline = Instant::now() + START_TIMEOUT;
        while !self.accepts_connections() {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL does not accept connections on 127.0.0.1:{}:\n{}",
                self.port(),
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
        self.running = true;
    }

    /// Runs `sql` with `psql` on [`DATABASE`] and returns its unaligned, tuples-only output
    /// (`-XAt`); panics with psql's error when it fails.
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new(self.bin.join("psql"))
            .args(self.client_args())
            .args(["-d", DATABASE, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .unwrap_or_else(|err| panic!("cannot run psql: {err}"));
        self.assert_ok(&out, &format!("psql -c {sql:?}"));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }

    /// Everything the server logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    /// Whether a TCP connection to the server's port succeeds now.
    pub fn accepts_connections(&self) -> bool {
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port()));
        TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_ok()
    }

    fn init(&self) {
        let data = self.data_dir();
        let mut command = self.server_command("initdb");
        command.args(["--auth=trust", "-U", USER, "-E", "UTF8", "--no-sync", "-D"]);
        command.arg(&data);
        let out = command
            .output()
            .unwrap_or_else(|err| panic!("cannot run initdb: {err}"));
        self.assert_ok(&out, "initdb");
        // The tests stop the server cleanly (a checkpoint) or drop the whole cluster; they never
        // crash PostgreSQL itself, so skipping fsync only makes them quicker.
        let settings = "\n# tests/common/postgres.rs\nfsync = off\nfull_page_writes = off\n\
                        max_connections = 100\nshared_buffers = 16MB\n";
        let conf = data.join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf).unwrap();
        text.push_str(settings);
        std::fs::write(&conf, text).unwrap();
        let socket_dir = self.socket_dir();
        std::fs::create_dir_all(&socket_dir).unwrap();
        File::create(self.log_path()).unwrap();
        if self.as_postgres_user {
            chown_to_postgres(&socket_dir);
            chown_to_postgres(&self.log_path());
        }
    }

    fn pg_ctl(&self, args: &[&str]) -> Output {
        let mut command = self.server_command("pg_ctl");
        command.arg("-D").arg(self.data_dir()).args(args);
        command
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|err| panic!("cannot run pg_ctl {args:?}: {err}"))
    }

    /// `program` of the server installation, run as `postgres` when the tests run as root.
    fn server_command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres_user {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn client_args(&self) -> Vec<String> {
        vec![
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            self.port().to_string(),
            "-U".into(),
            USER.into(),
        ]
    }

    fn assert_ok(&self, out: &Output, what: &str) {
        assert!(
            out.status.success(),
            "{what} failed ({}):\n{}{}\n===== PostgreSQL log =====\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn socket_dir(&self) -> PathBuf {
        self.dir.path().join("socket")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("postgres.log")
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running || self.data_dir().join("postmaster.pid").exists() {
            let _ = self.pg_ctl(&["stop", "-m", "immediate", "-w", "-t", "10"]);
        }
        if thread::panicking() {
            eprintln!(
                "===== PostgreSQL log (127.0.0.1:{}) =====\n{}",
                self.port(),
                self.log()
            );
        }
    }
}

/// The `bin` directory of the newest PostgreSQL under `/usr/lib/postgresql/*/bin` that has
/// `initdb`, `pg_ctl` and `postgres`; panics with the package to install when there is none.
fn find_bin_dir() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            ["initdb", "pg_ctl", "postgres", "createdb", "psql"]
                .iter()
                .all(|program| bin.join(program).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin).unwrap_or_else(|| {
        panic!(
            "PostgreSQL server programs (initdb, pg_ctl, postgres, createdb, psql) not found \
             under /usr/lib/postgresql/*/bin: install Debian's `postgresql` package \
             (apt-get install postgresql)"
        )
    })
}

fn is_root() -> bool {
    let out = Command::new("id")
        .arg("-u")
        .output()
        .unwrap_or_else(|err| panic!("cannot run id -u: {err}"));
    String::from_utf8_lossy(&out.stdout).trim() == "0"
}

/// Gives `path` to the `postgres` system user (the package creates it); panics otherwise.
fn chown_to_postgres(path: &Path) {
    let status = Command::new("chown")
        .arg("postgres:postgres")
        .arg(path)
        .status()
        .unwrap_or_else(|err| panic!("cannot run chown: {err}"));
    assert!(
        status.success(),
        "chown postgres:postgres {} failed: is Debian's `postgresql` package (which creates the \
         `postgres` user) installed?",
        path.display()
    );
}
