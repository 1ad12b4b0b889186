//! The Debian package built from the repository (packaging/build-deb.sh with dpkg-deb): what it
//! installs, that its configuration passes `check-config` as installed, and that its unit runs
//! the proxy the way the notify protocol expects.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_metaflow-proxy");
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/build-deb.sh");

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_deb_installs_binary_unit_config_man_page_and_logrotate() {
    assert!(
        Command::new("dpkg-deb").arg("--version").output().is_ok(),
        "dpkg-deb is needed to build the package (Debian's dpkg)"
    );
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("dist");
    // Uncompressed: the debug binary is large and xz takes minutes on it.
    let deb = run(Command::new(SCRIPT)
        .arg(BIN)
        .arg(&out)
        .env("DEB_COMPRESSION", "none"));
    let deb = deb.trim();
    assert!(deb.ends_with(".deb"), "{deb}");

    let contents = run(Command::new("dpkg-deb").args(["--contents", deb]));
    for path in [
        "./usr/bin/metaflow-proxy",
        "./lib/systemd/system/metaflow-proxy.service",
        "./etc/metaflow-proxy/metaflow-proxy.toml",
        "./usr/share/man/man1/metaflow-proxy.1.gz",
        "./etc/logrotate.d/metaflow-proxy",
    ] {
        assert!(
            contents.contains(path),
            "{path} not in the package:\n{contents}"
        );
    }
    let control = run(Command::new("dpkg-deb").args(["--field", deb, "Package", "Version"]));
    assert!(control.contains("Package: metaflow-proxy"), "{control}");
    assert!(
        control.contains(&format!("Version: {}", env!("CARGO_PKG_VERSION"))),
        "{control}"
    );
    let conffiles = run(Command::new("dpkg-deb").args(["--info", deb, "conffiles"]));
    assert!(conffiles.contains("/etc/metaflow-proxy/metaflow-proxy.toml"));

    let root = dir.path().join("root");
    run(Command::new("dpkg-deb").args(["-x", deb]).arg(&root));
    let config = root.join("etc/metaflow-proxy/metaflow-proxy.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    assert!(
        text.contains("\ndata-dir = \"/var/lib/metaflow-proxy\""),
        "{text}"
    );
    let checked = run(Command::new(root.join("usr/bin/metaflow-proxy"))
        .args(["check-config", "--config"])
        .arg(&config));
    assert!(
        checked.contains("data-dir /var/lib/metaflow-proxy"),
        "{checked}"
    );

    let unit =
        std::fs::read_to_string(root.join("lib/systemd/system/metaflow-proxy.service")).unwrap();
    for line in [
        "Type=notify",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "WatchdogSec=",
        "ExecStart=/usr/bin/metaflow-proxy --config /etc/metaflow-proxy/metaflow-proxy.toml",
    ] {
        assert!(unit.contains(line), "{line} missing from the unit:\n{unit}");
    }
}
