//! `gatehouse`: the headless Gatehouse server with its approvers, and the admin commands.
//! This file only wires the command line to the modules and turns errors into exit codes.

mod admin;
mod approver;
mod cli;
mod demo;
mod display;
mod input;
mod logging;
mod output;
mod serve;
mod signal;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;

use cli::{AuditCommand, Cli, Command, ConnectionsCommand, McpCommand, RulesCommand};

fn main() -> ExitCode {
    // clap exits with status 2 on a usage error, after printing what was wrong.
    let cli = Cli::parse();
    logging::init(cli.command.is_serve());

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // Blocking reads that are still running (a store read cut short by a signal) must not hold
    // the exit.
    runtime.shutdown_timeout(Duration::from_secs(2));

    match result {
        Ok(code) => code,
        // The reader of stdout went away (`gatehouse log | head`): that is a normal end.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<ExitCode> {
    let data_dir = match cli.data_dir {
        Some(dir) => dir,
        None => default_data_dir()?,
    };
    match cli.command {
        Command::Serve(args) => serve::run(&data_dir, args).await?,
        Command::Log(args) => admin::log::run(&data_dir, &args).await?,
        Command::Agents(args) => admin::agents::run(&data_dir, &args).await?,
        Command::Revoke(args) => admin::revoke::run(&data_dir, &args).await?,
        Command::Approvals(args) => admin::approvals::run(&data_dir, &args).await?,
        Command::DemoAgent(args) => return demo::run(&args).await,
        Command::Audit {
            command: AuditCommand::Verify(args),
        } => return admin::audit::verify(&data_dir, &args).await,
        Command::Rules { command } => match command {
            RulesCommand::List(args) => admin::rules::list(&data_dir, &args).await?,
            RulesCommand::Add(args) => admin::rules::add(&data_dir, &args).await?,
            RulesCommand::Rm(args) => admin::rules::rm(&data_dir, &args).await?,
        },
        Command::Pause(args) => admin::pause::run(&data_dir, &args, true).await?,
        Command::Resume(args) => admin::pause::run(&data_dir, &args, false).await?,
        Command::Domains { command } => admin::domains::run(&data_dir, &command).await?,
        Command::Connections { command } => match command {
            ConnectionsCommand::List(args) => admin::connections::list(&data_dir, &args).await?,
            ConnectionsCommand::Add(args) => admin::connections::add(&data_dir, &args).await?,
            ConnectionsCommand::Rm(args) => admin::connections::rm(&data_dir, &args).await?,
            ConnectionsCommand::Reconnect(args) => {
                admin::connections::reconnect(&data_dir, &args).await?
            }
        },
        Command::Mcp { command } => match command {
            McpCommand::List(args) => admin::mcp::list(&data_dir, &args).await?,
            McpCommand::Add(args) => admin::mcp::add(&data_dir, &args).await?,
            McpCommand::Tools(args) => admin::mcp::tools(&data_dir, &args).await?,
            McpCommand::Approve(args) => admin::mcp::approve(&data_dir, &args).await?,
            McpCommand::Rm(args) => admin::mcp::rm(&data_dir, &args).await?,
        },
    }
    Ok(ExitCode::SUCCESS)
}

fn default_data_dir() -> Result<PathBuf> {
    dirs::data_dir()
        .map(|d| d.join("gatehouse"))
        .context("cannot tell where this platform keeps application data; pass --data-dir DIR or set GATEHOUSE_DATA_DIR")
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
