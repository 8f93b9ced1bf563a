//! Reloading on change: a file watch (notify) on the config file's directory, debounced, that
//! applies each complete new version and keeps the running one through any bad or missing one.

use super::{install, layer, ConfigError};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

/// How long the file must stay unchanged before it is read: an editor's or a deploy tool's
/// several writes make one reload.
const QUIET: Duration = Duration::from_millis(100);

/// Loads the TOML file at `path` now (see [`load`](super::load)), then reloads it whenever it
/// changes, for the rest of the process. A version that does not parse or check (a typo, a
/// file caught half-written) is logged as an `error` and not applied; a file that disappears
/// is logged as a `warn`; either way the running configuration stays, and the watch goes on.
///
/// ```no_run
/// retry_runtime::config::watch("/etc/myservice/stormguard.toml")?;
/// # Ok::<(), retry_runtime::config::ConfigError>(())
/// ```
pub fn watch(path: impl AsRef<Path>) -> Result<(), ConfigError> {
    use notify::Watcher as _;
    crate::startup::first_use();
    let path = path.as_ref().to_path_buf();
    // The text applied now is the one later versions are compared with: read here, not in
    // the thread, which may start after the next write.
    let applied = super::read_and_apply(&path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (tx, rx) = mpsc::channel();
    let mut watcher = notify::recommended_watcher(move |event| {
        let _ = tx.send(event);
    })
    .and_then(|mut w| w.watch(&dir, notify::RecursiveMode::NonRecursive).map(|()| w))
    .map_err(|e| {
        ConfigError::from(super::Problem::new(
            &path.display().to_string(),
            0,
            0,
            "",
            format!("cannot watch the directory {} for changes ({e}); use `config::load` to apply the file once", dir.display()),
        ))
    })?;
    let name = path.file_name().map(|n| n.to_owned());
    std::thread::Builder::new()
        .name("stormguard-config-watch".into())
        .spawn(move || {
            let _keep = &mut watcher;
            let mut last_text = Some(applied);
            loop {
                // Wait for an event about our file, then for QUIET without another.
                let Ok(first) = rx.recv() else { return };
                let mut ours = concerns(&first, name.as_deref());
                while let Ok(next) = rx.recv_timeout(QUIET) {
                    ours |= concerns(&next, name.as_deref());
                }
                if !ours {
                    continue;
                }
                reload(&path, &mut last_text);
            }
        })
        .map_err(|e| {
            ConfigError::from(super::Problem::new(
                "config::watch",
                0,
                0,
                "",
                format!("cannot start the watch thread ({e})"),
            ))
        })?;
    Ok(())
}

fn concerns(event: &notify::Result<notify::Event>, name: Option<&std::ffi::OsStr>) -> bool {
    match event {
        Ok(e) => e.paths.iter().any(|p| p.file_name() == name),
        Err(_) => true,
    }
}

fn reload(path: &Path, last_text: &mut Option<String>) {
    let source = path.display().to_string();
    match std::fs::read_to_string(path) {
        Err(e) => {
            if last_text.take().is_some() {
                tracing::warn!(
                    target: crate::log::TARGET,
                    path = source.as_str(),
                    "stormguard config file is gone or unreadable ({e}); keeping the running configuration"
                );
            }
        }
        Ok(text) => {
            if last_text.as_deref() == Some(text.as_str()) {
                return;
            }
            // Only a version that stays put: a writer that truncates and then writes may be
            // caught in between (an empty file is a valid one, with no overrides). A file
            // still changing sends another event, and is read again then.
            std::thread::sleep(QUIET);
            if std::fs::read_to_string(path).ok().as_deref() != Some(text.as_str()) {
                return;
            }
            *last_text = Some(text.clone());
            let result = layer::parse(&source, &text, None).and_then(install);
            if let Err(e) = result {
                tracing::error!(
                    target: crate::log::TARGET,
                    path = source.as_str(),
                    "stormguard config reload rejected; keeping the running configuration: {e}"
                );
            }
        }
    }
}
