//! The web chat page and protocol with a scripted responder instead of the agent, for the
//! browser harness (`tests/webchat/*.mjs`) and for trying the page by hand:
//!
//! ```text
//! cargo run -p worldstore-adapters --example webchat_scripted -- [--port 8080] [--explorer-links]
//! ```
//!
//! Prints `listening http://127.0.0.1:PORT` once it accepts connections.

use worldstore_adapters::webchat::{WebChat, WebChatConfig, scripted};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let mut port = 0_u16;
    let mut explorer_links = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .and_then(|p| p.parse().ok())
                    .ok_or_else(|| std::io::Error::other("--port needs a number"))?;
            }
            "--explorer-links" => explorer_links = true,
            other => return Err(std::io::Error::other(format!("unknown argument {other}"))),
        }
    }
    let (chat, inbound) = WebChat::new(WebChatConfig {
        explorer_links,
        ..WebChatConfig::default()
    });
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("listening http://{}", listener.local_addr()?);
    tokio::spawn(scripted::run(chat.clone(), inbound));
    chat.serve(listener).await
}
