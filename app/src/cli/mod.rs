//! The command line: `worldstore <group> <command>`.

mod chat;
mod demo;
mod migrate;
mod replay;
mod serve;
mod wallet;
mod x402;

use clap::{Parser, Subcommand};
use std::io::Write;

#[derive(Debug, Parser)]
#[command(
    name = "worldstore",
    version,
    about = "Buy Amazon products by chatting with an agent, paid in USDC over x402."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// x402 payment tools: decode headers, walk through a payment.
    #[command(subcommand)]
    X402(x402::X402Command),
    /// Per-user wallets derived from the master secret.
    #[command(subcommand)]
    Wallet(wallet::WalletCommand),
    /// Create or update the database schema (SQLite file or PostgreSQL); idempotent.
    Migrate(migrate::MigrateArgs),
    /// The whole product in one process, no keys, no network: web chat on 127.0.0.1:8080.
    Demo(demo::DemoArgs),
    /// Run the agent, the order server and/or the x402 facilitator on 127.0.0.1.
    Serve(serve::ServeArgs),
    /// Chat with the agent in the terminal (sandbox: no keys, no network).
    Chat(chat::ChatArgs),
    /// Replay recorded conversations through the real machines; exit 1 on any difference.
    Replay(replay::ReplayArgs),
}

impl Cli {
    /// What is logged unless `RUST_LOG` says otherwise: services tell what they do;
    /// one-shot commands only warn.
    pub fn default_log_filter(&self) -> &'static str {
        match self.command {
            Command::Serve(_) | Command::Demo(_) => "warn,worldstore=info",
            _ => "warn",
        }
    }
}

pub fn run(cli: Cli, out: &mut dyn Write) -> anyhow::Result<()> {
    match cli.command {
        Command::X402(command) => x402::run(command, out),
        Command::Wallet(command) => wallet::run(command, out),
        Command::Migrate(args) => migrate::run(args, out),
        Command::Serve(args) => serve::run(args, out),
        Command::Demo(args) => demo::run(args, out),
        Command::Chat(args) => chat::run(args, out),
        Command::Replay(args) => replay::run(args, out),
    }
}
