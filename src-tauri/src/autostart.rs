//! "Start at login": an XDG autostart entry (`~/.config/autostart/gatehouse.desktop`) that runs
//! this binary with `--hidden` (and the data dir, when it is not the default), so Gatehouse comes
//! up in the tray at login.

use std::path::{Path, PathBuf};

use tauri::AppHandle;

use crate::state::Desktop;

const ENTRY: &str = "gatehouse.desktop";

fn entry_path() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("autostart").join(ENTRY))
}

/// The desktop entry for `exe` on `data_dir` (`None`: the default data dir).
fn entry(exe: &Path, data_dir: Option<&Path>) -> String {
    let mut exec = quote(&exe.display().to_string());
    exec.push_str(" --hidden");
    if let Some(dir) = data_dir {
        exec.push_str(" --data-dir ");
        exec.push_str(&quote(&dir.display().to_string()));
    }
    format!(
        "[Desktop Entry]\nType=Application\nName=Gatehouse\n\
         Comment=Approve what AI agents may do\nExec={exec}\nIcon=gatehouse\n\
         Terminal=false\nX-GNOME-Autostart-enabled=true\n"
    )
}

/// Quotes an Exec argument as the Desktop Entry spec asks (double quotes; `"`, `` ` ``, `$`, `\`
/// escaped; `%` doubled).
fn quote(arg: &str) -> String {
    let mut out = String::from("\"");
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Writes or removes the autostart entry. Failures are logged: the setting is saved either way
/// and the next save tries again.
pub fn apply(_app: &AppHandle, desktop: &Desktop, enabled: bool) {
    let Some(path) = entry_path() else {
        tracing::warn!("no config dir: cannot set up start at login");
        return;
    };
    let result = if enabled {
        let exe = match std::env::current_exe() {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell where this program is; start at login not set");
                return;
            }
        };
        let default_dir = dirs::data_dir().map(|d| d.join("gatehouse"));
        let data_dir = (default_dir.as_deref() != Some(desktop.data_dir.as_path()))
            .then_some(desktop.data_dir.as_path());
        path.parent()
            .map(std::fs::create_dir_all)
            .unwrap_or(Ok(()))
            .and_then(|()| std::fs::write(&path, entry(&exe, data_dir)))
    } else {
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            other => other,
        }
    };
    if let Err(e) = result {
        tracing::warn!(error = %e, path = %path.display(), "cannot change start at login");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_starts_hidden_on_the_data_dir() {
        let e = entry(
            Path::new("/opt/Gate house/gatehouse-desktop"),
            Some(Path::new("/home/a/100% $data")),
        );
        assert!(
            e.contains("Exec=\"/opt/Gate house/gatehouse-desktop\" --hidden --data-dir \"/home/a/100%% \\$data\"\n"),
            "{e}"
        );
        assert!(
            entry(Path::new("/usr/bin/gatehouse-desktop"), None)
                .contains("Exec=\"/usr/bin/gatehouse-desktop\" --hidden\n")
        );
    }
}
