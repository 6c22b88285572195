//! A small Chrome DevTools Protocol client over one WebSocket (awc): commands with an `id`
//! resolved by the matching response, events broadcast to whoever listens, and flattened
//! sessions (`sessionId` on each message) for pages.
//!
//! One task owns the socket's read half and routes what arrives; another owns the write half
//! and sends what commands queue. Neither holds a lock across an `.await`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use actix_ws::Item;
use awc::ws::{Frame, Message};
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::BROWSER_PATIENCE;

/// Largest DevTools message accepted (screenshots arrive as one base64 string).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

type Reply = Result<Value, String>;

#[derive(Default)]
struct Routes {
    next_id: u64,
    waiting: HashMap<u64, oneshot::Sender<Reply>>,
    /// `console.*` calls and uncaught exceptions per session, shown when a test fails.
    console: HashMap<String, Vec<String>>,
}

/// A connection to the browser. Cheap to clone.
#[derive(Clone)]
pub struct Cdp {
    outgoing: mpsc::UnboundedSender<String>,
    routes: Arc<Mutex<Routes>>,
    events: broadcast::Sender<Arc<Value>>,
}

/// A DevTools event: `method`, `params` and the `sessionId` it belongs to (if any).
pub type Event = Arc<Value>;

impl Cdp {
    pub async fn connect(url: &str) -> Cdp {
        let (_, framed) = awc::Client::new()
            .ws(url)
            .max_frame_size(MAX_MESSAGE_BYTES)
            .connect()
            .await
            .unwrap_or_else(|e| panic!("cannot open the DevTools socket {url}: {e}"));
        let (mut sink, mut stream) = framed.split();
        let (outgoing, mut queue) = mpsc::unbounded_channel::<String>();
        let routes = Arc::new(Mutex::new(Routes::default()));
        let (events, _) = broadcast::channel(4096);

        actix_web::rt::spawn(async move {
            while let Some(text) = queue.recv().await {
                if sink.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
        });

        let reader_routes = routes.clone();
        let reader_events = events.clone();
        actix_web::rt::spawn(async move {
            let mut partial: Vec<u8> = Vec::new();
            while let Some(Ok(frame)) = stream.next().await {
                let bytes = match frame {
                    Frame::Text(bytes) => bytes.to_vec(),
                    Frame::Continuation(Item::FirstText(bytes)) => {
                        partial = bytes.to_vec();
                        continue;
                    }
                    Frame::Continuation(Item::Continue(bytes)) => {
                        partial.extend_from_slice(&bytes);
                        continue;
                    }
                    Frame::Continuation(Item::Last(bytes)) => {
                        partial.extend_from_slice(&bytes);
                        std::mem::take(&mut partial)
                    }
                    Frame::Close(_) => break,
                    _ => continue,
                };
                let Ok(message) = serde_json::from_slice::<Value>(&bytes) else {
                    continue;
                };
                route(&reader_routes, &reader_events, message);
            }
            // The browser is gone: fail every command still waiting.
            reader_routes.lock().unwrap().waiting.clear();
        });

        Cdp {
            outgoing,
            routes,
            events,
        }
    }

    /// Sends a command (to the browser, or to a page's session) and returns its `result`.
    pub async fn call(&self, session: Option<&str>, method: &str, params: Value) -> Reply {
        let (tx, rx) = oneshot::channel();
        let id = {
            let mut routes = self.routes.lock().unwrap();
            routes.next_id += 1;
            let id = routes.next_id;
            routes.waiting.insert(id, tx);
            id
        };
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(session) = session {
            command["sessionId"] = json!(session);
        }
        self.outgoing
            .send(command.to_string())
            .map_err(|_| format!("{method}: the DevTools socket is closed"))?;
        match tokio::time::timeout(BROWSER_PATIENCE * 2, rx).await {
            Ok(Ok(reply)) => reply.map_err(|e| format!("{method}: {e}")),
            Ok(Err(_)) => Err(format!("{method}: the browser went away")),
            Err(_) => {
                self.routes.lock().unwrap().waiting.remove(&id);
                Err(format!(
                    "{method}: no answer within {:?}",
                    BROWSER_PATIENCE * 2
                ))
            }
        }
    }

    /// Like [`Cdp::call`], panicking on an error.
    pub async fn send(&self, session: Option<&str>, method: &str, params: Value) -> Value {
        self.call(session, method, params)
            .await
            .unwrap_or_else(|e| panic!("DevTools command failed: {e}"))
    }

    /// Events from now on. Subscribe before the command that causes the event.
    pub fn events(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }

    /// What the page of `session` wrote to its console, and its uncaught exceptions.
    pub fn console(&self, session: &str) -> Vec<String> {
        let routes = self.routes.lock().unwrap();
        routes.console.get(session).cloned().unwrap_or_default()
    }
}

/// Waits for the event `method` of `session`.
pub async fn next_event(
    events: &mut broadcast::Receiver<Event>,
    session: &str,
    method: &str,
) -> Event {
    let wait = async {
        loop {
            match events.recv().await {
                Ok(event) if event["method"] == method && event["sessionId"] == session => {
                    return event
                }
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => panic!("the browser went away"),
            }
        }
    };
    tokio::time::timeout(BROWSER_PATIENCE, wait)
        .await
        .unwrap_or_else(|_| panic!("no {method} within {BROWSER_PATIENCE:?}"))
}

fn route(routes: &Mutex<Routes>, events: &broadcast::Sender<Event>, message: Value) {
    if let Some(id) = message["id"].as_u64() {
        let waiting = routes.lock().unwrap().waiting.remove(&id);
        if let Some(tx) = waiting {
            let reply = match message.get("error") {
                Some(error) => Err(error.to_string()),
                None => Ok(message["result"].clone()),
            };
            let _ = tx.send(reply);
        }
        return;
    }
    if let (Some(line), Some(session)) = (console_line(&message), message["sessionId"].as_str()) {
        let mut routes = routes.lock().unwrap();
        routes
            .console
            .entry(session.to_owned())
            .or_default()
            .push(line);
    }
    let _ = events.send(Arc::new(message));
}

/// A console call or uncaught exception as one line of text.
fn console_line(message: &Value) -> Option<String> {
    let params = &message["params"];
    match message["method"].as_str()? {
        "Runtime.consoleAPICalled" => {
            let args: Vec<String> = params["args"]
                .as_array()?
                .iter()
                .map(|a| match &a["value"] {
                    Value::String(s) => s.clone(),
                    Value::Null => a["description"].as_str().unwrap_or("").to_owned(),
                    v => v.to_string(),
                })
                .collect();
            Some(format!(
                "console.{}: {}",
                params["type"].as_str()?,
                args.join(" ")
            ))
        }
        "Runtime.exceptionThrown" => {
            let details = &params["exceptionDetails"];
            let text = details["exception"]["description"]
                .as_str()
                .or(details["text"].as_str())?;
            Some(format!("uncaught: {text}"))
        }
        _ => None,
    }
}
