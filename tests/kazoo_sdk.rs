//! Kazoo's own Python client, `kazoo-sdk` from PyPI, against the real binary: it logs in with
//! the account's API key and as a user, creates a user and a device, sets account, user and
//! device metaflows and reads them back (tests/kazoo_sdk/client.py does the talking). Fails
//! loudly when python3 or the package is missing (tests/run and .ci/run install it).
#![allow(unreachable_pub, clippy::unwrap_used, clippy::expect_used)] // test code: a panic is a failed check

mod common;

use std::process::Command;

use common::proxy::Proxy;

#[test]
fn the_kazoo_python_sdk_works_unchanged() {
    let probe = Command::new("python3")
        .args(["-c", "import kazoo, kazoo.client"])
        .output()
        .expect("python3 is needed for this test (tests/run installs what is missing)");
    assert!(
        probe.status.success(),
        "the kazoo-sdk Python package is missing: python3 -m pip install kazoo-sdk==0.2.4\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );

    let proxy = Proxy::start(&[]);
    let operator = std::fs::read_to_string(proxy.data_dir().join("api-token")).unwrap();
    let account = proxy.api("GET", "/v2/accounts/default", Some(operator.trim()), None);
    assert_eq!(account.status, 200, "{}", account.body);
    let api_key = account.json()["data"]["api_key"]
        .as_str()
        .unwrap()
        .to_owned();

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/kazoo_sdk/client.py");
    let base_url = format!("http://{}/v2", proxy.api_addr());
    let run = Command::new("python3")
        .args([script, &base_url, &api_key])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(
        run.status.success(),
        "client.py failed\nstdout:\n{stdout}\nstderr:\n{stderr}\nproxy:\n{}",
        proxy.output()
    );
    assert!(stdout.contains("kazoo-sdk: ok"), "{stdout}");
}
