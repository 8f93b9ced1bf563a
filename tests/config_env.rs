//! `STORMGUARD_CONFIG`: the file it names is applied at the first call, with no init call (its
//! own binary: the first call happens once per process).

use stormguard::retry;

#[derive(Debug)]
struct Down;
impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "down")
    }
}

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

#[retry(attempts = 3, base = "1ms", max = "1ms", name = "env::first_use")]
async fn first_use() -> Result<(), Down> {
    CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    Err(Down)
}

#[tokio::test(start_paused = true)]
async fn the_file_named_by_stormguard_config_applies_at_the_first_call() {
    let path = std::env::temp_dir().join(format!("stormguard-env-{}.toml", std::process::id()));
    std::fs::write(&path, "[retry.\"env::first_use\"]\nenabled = false\n").unwrap();
    // Edition 2021: `set_var` is safe; this binary has this one test.
    std::env::set_var("STORMGUARD_CONFIG", &path);
    let _ = first_use().await;
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        CALLS.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the kill switch from the file"
    );
    let now = stormguard::config::current();
    assert!(
        now.contains(&format!("enabled = false  # {}:2", path.display())),
        "{now}"
    );
}
