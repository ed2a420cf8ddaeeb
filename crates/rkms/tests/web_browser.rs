//! Headless Chromium against a live host that has just activated clients through the real
//! protocol: each page's rendered DOM (after its scripts ran) shows the clients, products and
//! ePIDs, and a screenshot of each page is saved under `target/screenshots/`. Ignored by
//! default because it needs Chromium: `scripts/browser-test.sh` installs it and runs this.

mod web_common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use web_common::{activate_all, start, wait_ready, Options};

/// The Chromium binary: `$CHROMIUM`, else the first of the usual names on `PATH`.
fn chromium() -> Option<String> {
    if let Some(c) = std::env::var_os("CHROMIUM").filter(|c| !c.is_empty()) {
        return Some(c.to_string_lossy().into_owned());
    }
    ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|name| {
            std::env::var_os("PATH").is_some_and(|path| {
                std::env::split_paths(&path).any(|dir| dir.join(name).is_file())
            })
        })
        .map(str::to_owned)
}

fn screenshots_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    target.join("screenshots")
}

/// Runs Chromium headless with `args` (plus the isolation flags), killing it after 90 s;
/// returns its standard output.
fn run_chromium(binary: &str, profile: &Path, args: &[String]) -> String {
    let mut child = Command::new(binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium {args:?} did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let stdout = out.join().unwrap();
    let stderr = err.join().unwrap();
    assert!(
        status.success(),
        "chromium {args:?} failed ({status}): {stderr}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs Chromium: run scripts/browser-test.sh"]
async fn every_page_renders_the_activated_clients_in_chromium() {
    let binary = chromium().expect("Chromium not found: set CHROMIUM or install chromium");
    let host = start(Options::default()).await;
    assert_eq!(activate_all(host.kms).await, 5);
    wait_ready(host.web).await;
    let base = format!("http://{}", host.web);
    let alpha = web_common::clients()[0].cmid.to_string();
    let policy = host.state.policy();
    let epids: Vec<String> = policy
        .identity()
        .slots()
        .map(|(_, e, _)| e.to_owned())
        .collect();
    let hwid = hex::encode_upper(policy.identity().hwid());
    let kms_port = host.kms.port().to_string();
    let skms = format!("slmgr /skms 127.0.0.1:{kms_port}");

    let mut pages: Vec<(&str, String, Vec<String>)> = vec![
        (
            "overview",
            "/".into(),
            vec![
                "WS-ALPHA".into(),
                "SRV-BRAVO".into(),
                "PC-CHARLIE".into(),
                "PC-DELTA-REFUSED".into(),
                "Windows Server 2022 Standard".into(),
                "Ready".into(),
                "class=\"chart\"".into(),
                // The live feed's script replaced the table and said so.
                "live, updated".into(),
            ],
        ),
        (
            "clients",
            "/clients".into(),
            vec![
                "WS-ALPHA".into(),
                "SRV-BRAVO".into(),
                "PC-CHARLIE".into(),
                "PC-DELTA-REFUSED".into(),
                "Office Excel 2013".into(),
                alpha.clone(),
            ],
        ),
        (
            "client",
            format!("/clients/{alpha}"),
            vec![
                "WS-ALPHA".into(),
                "Windows 10/11 Pro".into(),
                "Office Excel 2013".into(),
                "History".into(),
            ],
        ),
        (
            "products",
            "/products".into(),
            vec![
                "W269N-WFGWX-YVC9B-4J6C9-T83GX".into(),
                "Windows Server 2022 Standard".into(),
                skms.clone(),
            ],
        ),
        (
            "products-search",
            "/products?q=W269N".into(),
            vec!["W269N-WFGWX-YVC9B-4J6C9-T83GX".into(), skms],
        ),
        ("settings", "/settings".into(), {
            let mut v = epids.clone();
            v.push(hwid);
            v.push("Client database".into());
            v
        }),
    ];
    // The same pages as a phone shows them.
    pages.push(("overview-phone", "/".into(), vec!["WS-ALPHA".into()]));
    pages.push(("clients-phone", "/clients".into(), vec!["WS-ALPHA".into()]));

    let dir = screenshots_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let profile = std::env::temp_dir().join(format!("rkms-chromium-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&profile);
    let checked = tokio::task::spawn_blocking(move || {
        let mut checked = Vec::new();
        for (name, path, expected) in &pages {
            let url = format!("{base}{path}");
            let size = if name.ends_with("-phone") {
                "--window-size=390,1400"
            } else {
                "--window-size=1280,1700"
            };
            let dom = run_chromium(
                &binary,
                &profile,
                &[
                    "--virtual-time-budget=4000".into(),
                    "--dump-dom".into(),
                    url.clone(),
                ],
            );
            for text in expected {
                assert!(
                    dom.contains(text.as_str()),
                    "{name} ({url}): the rendered page lacks {text:?}"
                );
            }
            // Times were turned into local times by the script (the UTC text moves to title).
            if dom.contains("<time") {
                assert!(
                    dom.contains("<time title=\"") || dom.contains("\" title=\""),
                    "{name}: times not localised"
                );
            }
            let shot = dir.join(format!("{name}.png"));
            let _ = std::fs::remove_file(&shot);
            run_chromium(
                &binary,
                &profile,
                &[
                    format!("--screenshot={}", shot.display()),
                    size.into(),
                    "--virtual-time-budget=4000".into(),
                    url.clone(),
                ],
            );
            let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("{name}: no screenshot: {e}"));
            assert!(
                png.starts_with(b"\x89PNG") && png.len() > 5000,
                "{name}: the screenshot is not a picture"
            );
            println!("{name}: {url} rendered; screenshot {}", shot.display());
            checked.push(name.to_string());
        }
        let _ = std::fs::remove_dir_all(&profile);
        checked
    })
    .await
    .unwrap();
    assert_eq!(checked.len(), 8);
}
