//! The binary: first start prints and saves the admin key (mode 0600), `keys` and `orgs`
//! work on the data folder of a running server and take effect without a restart, SIGTERM
//! shuts down gracefully.

mod common;

use common::{free_port, output_ok, reelay_command as reelay};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn http_status(port: u16, path: &str, key: &str) -> u16 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("X-BINTU-APIKEY", key)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    })
}

fn http_body(port: u16, path: &str, key: &str) -> String {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}{path}"))
            .header("X-BINTU-APIKEY", key)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    })
}

#[test]
fn first_start_keys_and_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (http, rtmp) = (free_port(), free_port());
    let mut server = reelay()
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--http-addr", &format!("127.0.0.1:{http}")])
        .args(["--rtmp-addr", &format!("127.0.0.1:{rtmp}")])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(server.stdout.take().unwrap());
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !printed.contains("Admin API key") && Instant::now() < deadline {
        stdout.read_line(&mut printed).unwrap();
    }
    let key_file = data.join("admin-api-key");
    let saved = std::fs::read_to_string(&key_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        printed.contains(&saved),
        "printed key matches the saved one"
    );
    let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    while http_status(http, "/health", "") != 200 {
        assert!(Instant::now() < deadline, "server did not come up");
        std::thread::sleep(Duration::from_millis(50));
    }

    // keys create/list/revoke against the running server's data folder.
    let out = output_ok(
        reelay()
            .args(["keys", "create", "--role", "nanoReadOnly", "--data-dir"])
            .arg(&data),
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let id = text.split_whitespace().nth(1).unwrap().to_string();
    let key = text.rsplit(' ').next().unwrap().trim().to_string();
    assert_eq!(
        http_status(http, "/stream/00000000-0000-4000-8000-000000000000", &key),
        404
    );
    let list = reelay()
        .args(["keys", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let listed = String::from_utf8(list.stdout).unwrap();
    assert!(listed.contains(&id) && listed.contains("nanoReadOnly"));
    assert!(!listed.contains(&key), "secrets are never listed");
    let revoke = reelay()
        .args(["keys", "revoke", &id, "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(revoke.status.success());
    assert_eq!(
        http_status(http, "/stream/00000000-0000-4000-8000-000000000000", &key),
        401
    );
    let bad = reelay()
        .args(["keys", "create", "--role", "root", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // orgs create prints a hash and a working admin key.
    let org = reelay()
        .args(["orgs", "create", "acme", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let org_text = String::from_utf8(org.stdout).unwrap();
    let org_key = org_text.rsplit(' ').next().unwrap().trim().to_string();
    assert_eq!(
        http_status(
            http,
            "/stream/00000000-0000-4000-8000-000000000000",
            &org_key
        ),
        404
    );
    let org_hash = org_text.split_whitespace().nth(1).unwrap().to_string();

    // orgs packages switches packages beside the running server; the API sees it at once.
    let switched = reelay()
        .args(["orgs", "packages", &org_hash, "--vod", "off", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let switched_text = String::from_utf8(switched.stdout).unwrap();
    assert!(switched.status.success(), "{switched_text}");
    assert!(
        switched_text.contains("vod=off live_processing=on"),
        "{switched_text}"
    );
    let org_json: serde_json::Value =
        serde_json::from_str(&http_body(http, "/organisation", &org_key)).unwrap();
    assert_eq!(org_json["packages"]["vod"], false, "{org_json}");
    let listed = reelay()
        .args(["orgs", "list", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    assert_eq!(listed.lines().count(), 2, "{listed}");
    assert!(
        listed.contains(&format!("{org_hash}\tacme\tvod=off")),
        "{listed}"
    );
    let unknown = reelay()
        .args(["orgs", "packages", "nope0", "--vod", "on", "--data-dir"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(!unknown.status.success());

    // SIGTERM: graceful exit with status 0.
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(Instant::now() < deadline, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let out = reelay()
        .args(["keys", "list", "--region", "mars"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.region"));
    let help = reelay().arg("--help").output().unwrap();
    let help = String::from_utf8(help.stdout).unwrap();
    for flag in [
        "--rtmp-addr",
        "--http-addr",
        "--data-dir",
        "--public-url",
        "--public-rtmp-url",
        "--region",
        "--config",
    ] {
        assert!(help.contains(flag), "{flag} in --help");
    }
}
