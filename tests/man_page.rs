//! The man page the .deb installs (packaging/metaflow-proxy.1) is generated from the command
//! line's own definition, so it cannot fall behind a flag. Regenerate it with
//! `UPDATE_MAN=1 cargo test --test man_page`.
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

use clap::CommandFactory;
use metaflow_proxy::config::cli::Cli;

const PAGE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/metaflow-proxy.1");

fn render() -> String {
    let mut out = Vec::new();
    clap_mangen::Man::new(Cli::command())
        .render(&mut out)
        .unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_man_page_matches_the_command_line() {
    let page = render();
    if std::env::var_os("UPDATE_MAN").is_some() {
        std::fs::write(PAGE, &page).unwrap();
    }
    let committed = std::fs::read_to_string(PAGE).unwrap_or_default();
    assert!(
        committed == page,
        "packaging/metaflow-proxy.1 is out of date: run UPDATE_MAN=1 cargo test --test man_page"
    );
    for flag in [
        "sip\\-listen",
        "pbx\\-address",
        "sip\\-advertise",
        "check\\-config",
    ] {
        assert!(page.contains(flag), "{flag} missing from the man page");
    }
}
