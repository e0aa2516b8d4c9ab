//! HTTP and WebSocket serving: the page with a strict Content-Security-Policy, and one
//! session task per socket.

use super::frames::{self, ClientFrame, Control, ErrorCode, FrameError, UserContent};
use super::{Accepted, WebChat};
use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::sync::mpsc;
use worldstore_domain::ports::store::Key;

const PAGE: &str = include_str!("page.html");
/// Largest frame a browser may send. A text message is at most 4000 characters, and a
/// longer one is answered with an error frame; only frames beyond this size (never sent by
/// the page) end the connection.
const MAX_FRAME_BYTES: usize = 1024 * 1024;
/// A socket must say hello within this time.
const HELLO_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) fn router(chat: WebChat) -> Router {
    Router::new()
        .route("/", get(page))
        .route("/ws", get(upgrade))
        .route("/healthz", get(|| async { "ok" }))
        .with_state(chat)
}

/// The page's inline script and style are allowed by hash, nothing else: no external
/// script, style, frame or connection beyond our own WebSocket.
fn content_security_policy() -> &'static str {
    static CSP: OnceLock<String> = OnceLock::new();
    CSP.get_or_init(|| {
        let hash = |open: &str, close: &str| {
            let start = PAGE.find(open).map_or(0, |i| i + open.len());
            let end = PAGE[start..].find(close).map_or(start, |i| start + i);
            let digest = Sha256::digest(&PAGE.as_bytes()[start..end]);
            format!(
                "'sha256-{}'",
                base64::engine::general_purpose::STANDARD.encode(digest)
            )
        };
        format!(
            "default-src 'none'; script-src {}; style-src {}; img-src https: data:; \
             connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            hash("<script>", "</script>"),
            hash("<style>", "</style>"),
        )
    })
}

async fn page() -> Response {
    let mut response = PAGE.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if let Ok(csp) = HeaderValue::from_str(content_security_policy()) {
        headers.insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// Refuses cross-site WebSocket upgrades: a page on another origin must not talk as our
/// user. Browsers always send `Origin`; tools that send none are allowed.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (
        origin.to_str(),
        headers.get(header::HOST).map(|h| h.to_str()),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|rest| rest == host)
}

async fn upgrade(
    State(chat): State<WebChat>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !same_origin(&headers) {
        return (StatusCode::FORBIDDEN, "cross-origin WebSocket refused").into_response();
    }
    ws.max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| session(chat, socket))
}

async fn send_control(socket: &mut WebSocket, control: &Control<'_>) -> bool {
    match frames::encode(control) {
        Ok(text) => socket.send(Message::Text(text.into())).await.is_ok(),
        Err(e) => {
            tracing::error!(error = %e, "web chat: could not encode a control frame");
            true
        }
    }
}

async fn send_error(
    socket: &mut WebSocket,
    code: ErrorCode,
    message: &str,
    id: Option<&str>,
) -> bool {
    send_control(socket, &Control::Error { code, message, id }).await
}

/// What the next data frame was: pings and pongs are skipped (the WebSocket layer answers
/// pings), binary frames are `Other` (answered with an error frame).
enum Read {
    Text(String),
    Other,
    Closed,
}

async fn read(socket: &mut WebSocket) -> Read {
    loop {
        return match socket.recv().await {
            Some(Ok(Message::Text(text))) => Read::Text(text.as_str().to_owned()),
            Some(Ok(Message::Binary(_))) => Read::Other,
            // Answered by the WebSocket layer itself; nothing for us to do.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => Read::Closed,
        };
    }
}

fn user_of(raw: &str) -> Result<Key, FrameError> {
    frames::check_short_id(raw, "user must be 1-64 of [A-Za-z0-9._:-]")?;
    Key::parse(raw).map_err(|_| FrameError::Invalid("user is not a valid id"))
}

/// Waits for `hello`, answering anything else with an error frame.
async fn await_hello(socket: &mut WebSocket) -> Option<(Key, u64)> {
    loop {
        match read(socket).await {
            Read::Closed => return None,
            Read::Other => {
                let ok =
                    send_error(socket, ErrorCode::Malformed, "frames are JSON text", None).await;
                if !ok {
                    return None;
                }
            }
            Read::Text(text) => {
                let answer = match ClientFrame::parse(&text) {
                    Ok(ClientFrame::Hello { user, after }) => match user_of(&user) {
                        Ok(user) => return Some((user, after)),
                        Err(e) => (e.code(), e.to_string(), None),
                    },
                    Ok(other) => (
                        ErrorCode::Protocol,
                        "say hello first".to_owned(),
                        other.id().map(str::to_owned),
                    ),
                    Err(e) => (e.code(), e.to_string(), None),
                };
                if !send_error(socket, answer.0, &answer.1, answer.2.as_deref()).await {
                    return None;
                }
            }
        }
    }
}

async fn session(chat: WebChat, mut socket: WebSocket) {
    let Ok(Some((user, after))) =
        tokio::time::timeout(HELLO_TIMEOUT, await_hello(&mut socket)).await
    else {
        return;
    };
    let mut attached = chat.attach(&user, after);
    let welcome = Control::Welcome {
        user: user.as_str(),
        epoch: chat.shared.config.epoch,
        last_seq: attached.last_seq,
        oldest_seq: attached.oldest_seq,
    };
    let mut open = send_control(&mut socket, &welcome).await;
    for frame in std::mem::take(&mut attached.replay) {
        if !open {
            break;
        }
        open = socket
            .send(Message::Text(frame.as_ref().into()))
            .await
            .is_ok();
    }
    while open {
        tokio::select! {
            pushed = attached.frames.recv() => match pushed {
                Some(frame) => {
                    open = socket.send(Message::Text(frame.as_ref().into())).await.is_ok();
                }
                None => {
                    // Detached by the server (disconnect, or this socket fell behind).
                    let _ = socket
                        .send(Message::Close(Some(CloseFrame {
                            code: 4000,
                            reason: "reconnect".into(),
                        })))
                        .await;
                    open = false;
                }
            },
            incoming = read(&mut socket) => match incoming {
                Read::Closed => open = false,
                Read::Other => {
                    open = send_error(&mut socket, ErrorCode::Malformed, "frames are JSON text", None).await;
                }
                Read::Text(text) => {
                    open = handle(&chat, &user, &mut socket, &mut attached.frames, &text).await;
                }
            },
        }
    }
    chat.detach(&user, attached.socket_id);
}

fn validate(frame: ClientFrame) -> Result<(String, UserContent), FrameError> {
    let (id, content) = match frame {
        ClientFrame::Hello { .. } => {
            return Err(FrameError::Invalid("this socket already said hello"));
        }
        ClientFrame::Text { id, text } => {
            let text = text.trim().to_owned();
            if text.is_empty() {
                return Err(FrameError::Invalid("text is empty"));
            }
            if text.chars().count() > frames::MAX_TEXT_CHARS {
                return Err(FrameError::Invalid("text is longer than 4000 characters"));
            }
            (id, UserContent::Text { text })
        }
        ClientFrame::Intent {
            id,
            menu_id,
            action_id,
        } => {
            frames::check_short_id(&menu_id, "menu_id must be 1-64 of [A-Za-z0-9._:-]")?;
            frames::check_short_id(&action_id, "action_id must be 1-64 of [A-Za-z0-9._:-]")?;
            (id, UserContent::Intent { menu_id, action_id })
        }
        ClientFrame::Approve { id, request_id } => {
            frames::check_short_id(&request_id, "request_id must be 1-64 of [A-Za-z0-9._:-]")?;
            (id, UserContent::Approve { request_id })
        }
    };
    frames::check_short_id(&id, "id must be 1-64 of [A-Za-z0-9._:-]")?;
    Ok((id, content))
}

/// Sends what was pushed to this socket so far (the echo of the message being answered),
/// so that its `ack` or `error` comes after it.
async fn flush(socket: &mut WebSocket, frames: &mut mpsc::Receiver<Arc<str>>) -> bool {
    while let Ok(frame) = frames.try_recv() {
        if socket
            .send(Message::Text(frame.as_ref().into()))
            .await
            .is_err()
        {
            return false;
        }
    }
    true
}

/// One frame after hello. Returns whether the socket is still open.
async fn handle(
    chat: &WebChat,
    user: &Key,
    socket: &mut WebSocket,
    frames: &mut mpsc::Receiver<Arc<str>>,
    text: &str,
) -> bool {
    let frame = match ClientFrame::parse(text) {
        Ok(frame) => frame,
        Err(e) => return send_error(socket, e.code(), &e.to_string(), None).await,
    };
    let client_id = frame.id().map(str::to_owned);
    let (id, content) = match validate(frame) {
        Ok(valid) => valid,
        Err(e) => {
            let code = if client_id.is_none() {
                ErrorCode::Protocol
            } else {
                e.code()
            };
            return send_error(socket, code, &e.to_string(), client_id.as_deref()).await;
        }
    };
    // Room for the agent's event is taken before the echo is logged, so nothing is logged
    // that the agent will not get, and a busy agent slows this socket down.
    let Ok(permit) = chat.shared.inbound.reserve().await else {
        let message = "the agent is not taking messages";
        return send_error(socket, ErrorCode::Unavailable, message, Some(&id)).await;
    };
    let duplicate = match chat.accept(user, &id, content) {
        Ok(Accepted::New(inbound)) => {
            permit.send(inbound);
            false
        }
        Ok(Accepted::Duplicate) => true,
        Err(e) => {
            tracing::error!(error = %e, "web chat: could not log a user message");
            return send_error(socket, ErrorCode::Unavailable, "not logged", Some(&id)).await;
        }
    };
    if !flush(socket, frames).await {
        return false;
    }
    send_control(socket, &Control::Ack { id: &id, duplicate }).await
}
