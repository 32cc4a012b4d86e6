//! `gatehouse-desktop`: the Gatehouse core and loopback server in-process (the same
//! [`Instance`] `gatehouse serve` runs), with the person approving from the tray, notifications
//! and a consent window, and a main window over the same core.

// A GUI app on Windows must not open a console window.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

mod args;
mod autostart;
mod commands;
mod connections;
mod describe;
mod error;
mod live;
mod mcp;
mod notifications;
mod ops;
mod single_instance;
mod state;
mod tray;
mod windows;

#[cfg(test)]
mod bindings;

use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gatehouse_core::settings::{self, Settings};
use gatehouse_core::{Clock, DataDirLock, Store, StoreError, StoreOptions, SystemClock};
use gatehouse_server::instance::{Instance, InstanceOptions, StartError};
use tauri::{AppHandle, Manager, RunEvent};

use crate::args::Args;
use crate::notifications::Notifier;
use crate::state::Desktop;
use crate::windows::ConsentQueue;

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging();
    match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("gatehouse-desktop: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,rmcp=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(args: Args) -> anyhow::Result<ExitCode> {
    // Registered first: a SIGTERM that arrives while the app is still starting (a test, a service
    // manager) is held until the app can stop cleanly, instead of killing it half-started.
    let signals = tauri::async_runtime::block_on(async { StopSignals::register() })
        .context("cannot listen for SIGTERM and SIGINT")?;
    let data_dir = args::data_dir(&args)?;
    let busy_timeout = Duration::from_millis(args.busy_timeout_ms);
    // The lock is tried before the database is opened for the settings: a second launch hands
    // off without touching the store another instance is using (nor migrating it under it).
    let saved = match DataDirLock::acquire(&data_dir) {
        Ok(lock) => {
            let saved = saved_settings(&data_dir, busy_timeout);
            // Released for the instance to take; a launch racing in between is handed off below.
            drop(lock);
            saved
        }
        Err(StoreError::Locked(_)) => return hand_off(&data_dir),
        // The instance reports it properly when it tries the same.
        Err(_) => Settings::default(),
    };
    // The command line (and environment) win over the settings, which win over the defaults.
    let listen = match args.listen.or(saved.listen_addr()) {
        Some(addr) => addr,
        None => args::DEFAULT_LISTEN
            .parse()
            .context("the default listen address")?,
    };
    let approval_timeout = args.approval_timeout.unwrap_or(saved.approval_timeout_secs);
    let options = InstanceOptions {
        data_dir: data_dir.clone(),
        listen,
        approval_timeout: Duration::from_secs(approval_timeout),
        busy_timeout,
    };

    // Subscribed before the server takes its first request, so no approval is missed.
    let mut notices = None;
    let started = tauri::async_runtime::block_on(Instance::start_with(options, |authority| {
        notices = Some(authority.broker().subscribe());
    }));
    let instance = match started {
        Ok(instance) => instance,
        Err(StartError::Locked { data_dir: locked }) => return hand_off(&locked),
        Err(e) => return Err(e.into()),
    };
    let notices = notices.context("the instance started without subscribing the app")?;
    let feed = instance.store().subscribe();

    let socket = match single_instance::listen(&data_dir) {
        Ok(s) => Some(s),
        Err(e) => {
            // The data-dir lock still keeps a second server out; only the focus hand-off is lost.
            tracing::warn!(error = %e, "cannot listen for later launches");
            None
        }
    };

    let listening = serde_json::json!({ "event": "listening", "issuer": instance.issuer() });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{listening}").context("cannot write to stdout")?;
    stdout.flush().context("cannot write to stdout")?;
    drop(stdout);

    let desktop = Desktop::new(instance);
    let notifier = Notifier::default();
    notifier.set_kinds(notifications::NotifyKinds::from(&saved));
    let hidden = args.hidden;
    let app = tauri::Builder::default()
        .manage(desktop)
        .manage(Mutex::new(ConsentQueue::default()))
        .manage(notifier)
        .manage(live::Poke::default())
        .manage(tray::Shown::default())
        .invoke_handler(tauri::generate_handler![
            commands::status,
            commands::approvals_pending,
            commands::approvals_history,
            commands::approval_get,
            commands::approval_decide,
            commands::agents_list,
            commands::agent_revoke,
            commands::agent_suspend,
            commands::grant_revoke,
            commands::events_page,
            commands::event_kinds,
            commands::events_export,
            commands::rules_list,
            commands::rule_delete,
            commands::pause_set,
            commands::settings_get,
            commands::settings_set,
            commands::kill_switch,
            commands::connections_list,
            connections::connection_reconnect,
            connections::connection_connect,
            connections::connection_add_key,
            connections::connection_remove,
            mcp::mcp_servers,
            mcp::mcp_tools,
            mcp::mcp_approve_tool,
            mcp::mcp_remove,
        ])
        .setup(move |app| {
            let handle = app.handle().clone();
            tray::create(&handle)?;
            windows::create_main(&handle, !hidden)?;
            tauri::async_runtime::spawn(live::run(handle.clone(), notices, feed));
            tauri::async_runtime::spawn(stop_on_signal(handle.clone(), signals));
            if let Some(socket) = socket {
                single_instance::serve(socket, handle)?;
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .context("cannot start the desktop app")?;

    app.run(|_app, event| {
        // Closing the last window (the consent window, or the main window before it hides) must
        // not stop Gatehouse: only Quit and signals do, through `shutdown`, which exits with a code.
        if let RunEvent::ExitRequested {
            code: None, api, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    Ok(ExitCode::SUCCESS)
}

/// Another instance holds `data_dir`: ask it to show itself, and exit 0. When nothing answers
/// (e.g. `gatehouse serve`, not the app, holds it), fail saying who holds it.
fn hand_off(data_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    match single_instance::hand_off(data_dir) {
        Ok(()) => {
            tracing::info!(data_dir = %data_dir.display(), "Gatehouse is already running on this data dir; showed it");
            Ok(ExitCode::SUCCESS)
        }
        Err(_) => Err(StartError::Locked {
            data_dir: data_dir.to_path_buf(),
        }
        .into()),
    }
}

/// The saved settings, read before the instance starts because they hold the listen address.
/// Read while holding the data-dir lock; a failure falls back to the defaults, and the instance
/// then reports the real problem.
fn saved_settings(data_dir: &std::path::Path, busy_timeout: Duration) -> Settings {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store = match Store::open(data_dir, StoreOptions { busy_timeout }, clock) {
        Ok(store) => store,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the saved settings; using the defaults");
            return Settings::default();
        }
    };
    let loaded = tauri::async_runtime::block_on(settings::load(&store));
    store.close();
    loaded.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "cannot read the saved settings; using the defaults");
        Settings::default()
    })
}

/// SIGTERM and SIGINT, registered with the OS (so no longer fatal) from the moment this exists.
struct StopSignals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl StopSignals {
    fn register() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }

    async fn recv(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }
}

/// SIGTERM or SIGINT: the same clean stop as Quit.
async fn stop_on_signal(app: AppHandle, mut signals: StopSignals) {
    let signal = signals.recv().await;
    shutdown(app, signal).await;
}

/// Stops the server (drained), flushes token uses, closes the store, removes the socket, releases
/// the lock, then exits 0. Runs once; a second Quit or signal meanwhile does nothing.
pub async fn shutdown(app: AppHandle, why: &'static str) {
    let desktop = app.state::<Desktop>();
    let Some(instance) = desktop.take_instance() else {
        return;
    };
    tracing::info!(reason = why, "stopping");
    single_instance::remove(&desktop.data_dir);
    instance.shutdown().await;
    app.exit(0);
}
