//! The load generator's WebSocket client: one socket, request/reply by JSON frame, pings
//! answered as any client library does, and every wait bounded by the operation timeout.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use actix_codec::Framed;
use awc::error::WsClientError;
use awc::ws::{CloseCode, Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use super::stats::OpError;

/// Frames the server sends may be this large (the options of an account with many passkeys).
const MAX_FRAME_BYTES: usize = 1 << 20;

/// Builds the HTTP client a load thread opens its sockets with: no cap on simultaneous
/// connections (awc's default is 100) and, when given, a fixed local address, so that runs with
/// more sockets than one source address has ephemeral ports can spread over 127.0.0.x.
pub fn http_client(timeout: Duration, source: Option<IpAddr>) -> awc::Client {
    let mut connector = awc::Connector::new().limit(0).timeout(timeout);
    if let Some(ip) = source {
        connector = connector.local_address(ip);
    }
    awc::Client::builder()
        .connector(connector)
        .timeout(timeout)
        .finish()
}

/// One open WebSocket.
pub struct Socket {
    framed: Framed<BoxedSocket, Codec>,
    timeout: Duration,
}

impl Socket {
    /// Opens `url` with the given `Origin` (none when empty) and bearer token.
    pub async fn open(
        client: &awc::Client,
        url: &str,
        origin: &str,
        bearer: Option<&str>,
        timeout: Duration,
    ) -> Result<Socket, OpError> {
        let mut req = client.ws(url).max_frame_size(MAX_FRAME_BYTES);
        if !origin.is_empty() {
            req = req.origin(origin);
        }
        if let Some(token) = bearer {
            req = req.bearer_auth(token);
        }
        let connected = tokio::time::timeout(timeout, req.connect())
            .await
            .map_err(|_| OpError::Timeout)?;
        match connected {
            Ok((_, framed)) => Ok(Socket { framed, timeout }),
            Err(WsClientError::InvalidResponseStatus(status)) => {
                Err(OpError::Http(status.as_u16()))
            }
            Err(_) => Err(OpError::Connect),
        }
    }

    pub async fn send(&mut self, text: String) -> Result<(), OpError> {
        match tokio::time::timeout(self.timeout, self.framed.send(Message::Text(text.into()))).await
        {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(OpError::Closed(None)),
            Err(_) => Err(OpError::Timeout),
        }
    }

    /// The next text frame as JSON; an `error` frame becomes [`OpError::Server`] with its code.
    pub async fn recv(&mut self) -> Result<Value, OpError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline.into(), self.framed.next())
                .await
                .map_err(|_| OpError::Timeout)?;
            match frame {
                None | Some(Err(_)) => return Err(OpError::Closed(None)),
                Some(Ok(Frame::Text(bytes))) => {
                    let value: Value =
                        serde_json::from_slice(&bytes).map_err(|_| OpError::Unexpected)?;
                    if value["type"] == "error" {
                        let code = value["code"].as_str().unwrap_or("error");
                        return Err(OpError::Server(code.to_owned()));
                    }
                    return Ok(value);
                }
                Some(Ok(Frame::Close(reason))) => {
                    return Err(OpError::Closed(reason.map(|r| u16::from(r.code))))
                }
                Some(Ok(Frame::Ping(bytes))) => self.pong(bytes).await?,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends `text` and waits for the next data frame, which must be as long (an echo).
    pub async fn echo(&mut self, text: &str) -> Result<(), OpError> {
        self.send(text.to_owned()).await?;
        let deadline = Instant::now() + self.timeout;
        loop {
            let frame = tokio::time::timeout_at(deadline.into(), self.framed.next())
                .await
                .map_err(|_| OpError::Timeout)?;
            match frame {
                None | Some(Err(_)) => return Err(OpError::Closed(None)),
                Some(Ok(Frame::Text(bytes) | Frame::Binary(bytes))) => {
                    return match bytes.len() == text.len() {
                        true => Ok(()),
                        false => Err(OpError::Unexpected),
                    }
                }
                Some(Ok(Frame::Close(reason))) => {
                    return Err(OpError::Closed(reason.map(|r| u16::from(r.code))))
                }
                Some(Ok(Frame::Ping(bytes))) => self.pong(bytes).await?,
                Some(Ok(_)) => {}
            }
        }
    }

    /// Sends `frame` and waits for the reply, which must have `"type": expect`.
    pub async fn request(&mut self, frame: String, expect: &str) -> Result<Value, OpError> {
        self.send(frame).await?;
        let reply = self.recv().await?;
        if reply["type"] == expect {
            Ok(reply)
        } else {
            Err(OpError::Unexpected)
        }
    }

    /// Keeps the socket open until `until`, answering the server's heartbeat pings. Returns
    /// early with an error if the server closes it.
    pub async fn hold(&mut self, until: Instant) -> Result<(), OpError> {
        loop {
            let frame = match tokio::time::timeout_at(until.into(), self.framed.next()).await {
                Err(_) => return Ok(()),
                Ok(frame) => frame,
            };
            match frame {
                None | Some(Err(_)) => return Err(OpError::Closed(None)),
                Some(Ok(Frame::Close(reason))) => {
                    return Err(OpError::Closed(reason.map(|r| u16::from(r.code))))
                }
                Some(Ok(Frame::Ping(bytes))) => self.pong(bytes).await?,
                Some(Ok(_)) => {}
            }
        }
    }

    async fn pong(&mut self, bytes: actix_web::web::Bytes) -> Result<(), OpError> {
        self.framed
            .send(Message::Pong(bytes))
            .await
            .map_err(|_| OpError::Closed(None))
    }

    /// Sends a normal close and lets the socket go.
    pub async fn close(mut self) {
        let close = Message::Close(Some(CloseCode::Normal.into()));
        let _ = tokio::time::timeout(self.timeout, self.framed.send(close)).await;
    }

    /// The whole closing handshake, as browsers and client libraries do it: send a normal close,
    /// wait for the server's close frame, then read until the server ends the TCP stream (RFC
    /// 6455 7.1.1: the server closes the connection first). A server that keeps the connection
    /// open past the handshake makes this wait, as it makes real clients wait.
    pub async fn close_handshake(mut self) -> Result<(), OpError> {
        let deadline = Instant::now() + self.timeout;
        let close = Message::Close(Some(CloseCode::Normal.into()));
        tokio::time::timeout_at(deadline.into(), self.framed.send(close))
            .await
            .map_err(|_| OpError::Timeout)?
            .map_err(|_| OpError::Closed(None))?;
        let mut answered = false;
        loop {
            let frame = tokio::time::timeout_at(deadline.into(), self.framed.next())
                .await
                .map_err(|_| OpError::Timeout)?;
            match frame {
                // The end of the stream: after the server's close frame, that is the handshake
                // done; before it, the server dropped the connection without closing.
                None => {
                    return if answered {
                        Ok(())
                    } else {
                        Err(OpError::Closed(None))
                    }
                }
                Some(Err(_)) => return Err(OpError::Closed(None)),
                Some(Ok(Frame::Close(_))) => answered = true,
                Some(Ok(_)) => {}
            }
        }
    }
}
