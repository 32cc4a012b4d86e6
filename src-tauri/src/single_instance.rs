//! One app per data dir. The instance holding the data-dir lock listens on `DATA_DIR/desktop.sock`;
//! a second launch on the same data dir (which fails to take the lock) writes `focus\n` there and
//! exits, and the first shows its main window. A different data dir is a different instance.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tauri::AppHandle;

use crate::windows;

pub const SOCKET: &str = "desktop.sock";

/// How long a second launch keeps trying to reach the first (it may hold the lock but not have
/// bound its socket yet).
const HAND_OFF_PATIENCE: Duration = Duration::from_secs(3);

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// Binds the socket. Only the lock holder calls this, so a socket file already there is stale
/// (left by a crash) and is replaced.
pub fn listen(data_dir: &Path) -> std::io::Result<UnixListener> {
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(path = %path.display(), "replaced a stale socket"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&path)?;
    restrict(&path);
    Ok(listener)
}

fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)) {
        tracing::warn!(error = %e, "cannot restrict the socket to this user");
    }
}

/// Answers later launches on its own thread: `focus` shows the main window.
pub fn serve(listener: UnixListener, app: AppHandle) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("gatehouse-single-instance".into())
        .spawn(move || {
            for stream in listener.incoming() {
                let stream = match stream {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(error = %e, "single-instance socket failed");
                        break;
                    }
                };
                let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
                let mut line = String::new();
                if BufReader::new(stream).read_line(&mut line).is_ok() && line.trim() == "focus" {
                    tracing::info!("another launch asked to focus this instance");
                    windows::show_main(&app);
                }
            }
        })
        .map(|_| ())
}

/// Asks the instance already running on `data_dir` to show itself. Errors when none answers
/// (e.g. `gatehouse serve`, not the app, holds the data dir).
pub fn hand_off(data_dir: &Path) -> std::io::Result<()> {
    let path = socket_path(data_dir);
    let started = Instant::now();
    loop {
        match UnixStream::connect(&path) {
            Ok(mut stream) => {
                stream.write_all(b"focus\n")?;
                return stream.flush();
            }
            Err(e) if started.elapsed() >= HAND_OFF_PATIENCE => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// Removes the socket at shutdown (before the lock is released, so no later instance's socket
/// is removed by mistake).
pub fn remove(data_dir: &Path) {
    match std::fs::remove_file(socket_path(data_dir)) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(error = %e, "cannot remove the single-instance socket"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_off_writes_focus_and_a_stale_socket_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        // A stale socket file (from a crash) does not stop the next instance.
        drop(UnixListener::bind(socket_path(dir.path())).expect("stale"));
        let listener = listen(dir.path()).expect("binds over the stale file");
        let reader = std::thread::spawn(move || {
            let (stream, _) = listener.accept().expect("accept");
            let mut line = String::new();
            BufReader::new(stream).read_line(&mut line).expect("read");
            line
        });
        hand_off(dir.path()).expect("hands off");
        assert_eq!(reader.join().expect("reader"), "focus\n");
        remove(dir.path());
        assert!(!socket_path(dir.path()).exists());
    }

    #[test]
    fn hand_off_fails_when_nobody_listens() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(hand_off(dir.path()).is_err());
    }
}
