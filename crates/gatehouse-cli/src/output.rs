//! The one owner of stdout while `serve` runs. Every message goes through a single task and is
//! flushed as it is written, so lines from different tasks never interleave and a tool reading
//! the jsonl stream sees each line as soon as it exists.

use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// A handle for writing to stdout. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Output {
    tx: mpsc::UnboundedSender<String>,
}

impl Output {
    /// Starts the writer task. It ends once every handle is dropped and what they sent is written.
    pub fn spawn() -> (Output, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Output { tx }, tokio::spawn(writer(rx)))
    }

    /// Writes text as is (include the newline).
    pub fn text(&self, text: impl Into<String>) {
        // The writer only goes away at shutdown, when there is nobody left to tell.
        let _ = self.tx.send(text.into());
    }

    /// Writes one value as one line of JSON.
    pub fn json_line(&self, value: &impl serde::Serialize) {
        match serde_json::to_string(value) {
            Ok(mut line) => {
                line.push('\n');
                self.text(line);
            }
            // Our own output types always serialize; say so loudly if one ever does not.
            Err(e) => tracing::error!(error = %e, "cannot serialize an output line"),
        }
    }
}

async fn writer(mut rx: mpsc::UnboundedReceiver<String>) {
    let mut stdout = tokio::io::stdout();
    let mut broken = false;
    while let Some(text) = rx.recv().await {
        if broken {
            // Keep draining so senders never block or pile up; the reader is gone.
            continue;
        }
        let result = async {
            stdout.write_all(text.as_bytes()).await?;
            stdout.flush().await
        }
        .await;
        if let Err(e) = result {
            // The server keeps running without its stdout reader: agents still get answers,
            // and decisions can still arrive by other channels or expire.
            tracing::warn!(error = %e, "stdout is no longer writable; further output is dropped");
            broken = true;
        }
    }
}
