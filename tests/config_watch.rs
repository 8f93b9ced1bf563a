//! `stormguard::config::watch`: a watched file reloads on change and the running configuration
//! survives a half-written or a missing version (its own binary: the watch lasts the process).

use std::time::Duration;
use stormguard::{config, retry};

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "down")
    }
}

#[retry(attempts = 3, name = "cfg::flaky")]
async fn flaky() -> Result<(), Down> {
    Err(Down)
}

stormguard::breakers! {
    cfg_pay { consecutive_failures: 2 }
}

#[tokio::test]
async fn a_watched_file_reloads_and_survives_bad_and_missing_versions() {
    let dir = std::env::temp_dir().join(format!("stormguard-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("stormguard.toml");
    std::fs::write(&path, "[retry.\"cfg::flaky\"]\nattempts = 4\n").unwrap();
    config::watch(&path).unwrap();
    assert!(config::current().contains("attempts = 4"));
    let wait_for = |needle: &str| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while std::time::Instant::now() < deadline {
            if config::current().contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    };
    std::fs::write(&path, "[retry.\"cfg::flaky\"]\nattempts = 6\n").unwrap();
    assert!(wait_for("attempts = 6"), "{}", config::current());
    // Half-written: the first line of a new version, cut in the middle of the second.
    std::fs::write(
        &path,
        "[retry.\"cfg::flaky\"]\nattempts = 7\n[breaker.cfg_pay]\nopen_for = \"3",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        config::current().contains("attempts = 6"),
        "no partial apply"
    );
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(Duration::from_millis(600));
    assert!(
        config::current().contains("attempts = 6"),
        "kept the last good one"
    );
    std::fs::write(&path, "[retry.\"cfg::flaky\"]\nattempts = 2\n").unwrap();
    assert!(
        wait_for("attempts = 2"),
        "the watch goes on after the file came back"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = flaky;
}
