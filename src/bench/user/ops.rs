//! The operations a virtual user measures: ceremonies on its kept-open `/ws` socket, an
//! authenticated connect, and an HTTP request with its token.

use serde_json::{json, Value};

use super::VirtualUser;
use crate::bench::client::Socket;
use crate::bench::stats::{Op, OpError};
use crate::bench::ConnectAuth;
use crate::softkey::SoftAuthenticator;

impl VirtualUser {
    /// Runs a ceremony on the kept-open `/ws` socket, opening it first when needed, and keeps
    /// the socket for the next one unless it failed or has served `--ops-per-socket`.
    pub(super) async fn with_ceremony_socket(
        &mut self,
        op: Op,
        username: &str,
    ) -> Result<(), OpError> {
        let mut ws = match self.ceremony_socket.take() {
            Some(ws) => ws,
            None => {
                let opts = &self.ctx.shared.options;
                self.ops_on_socket = 0;
                Socket::open(
                    self.client(),
                    &opts.ceremony_url,
                    &opts.origin,
                    None,
                    opts.timeout,
                )
                .await?
            }
        };
        let result = match op {
            Op::Register => self.register(&mut ws, username).await,
            _ => self.login(&mut ws).await,
        };
        self.ops_on_socket += 1;
        let limit = self.ctx.shared.options.ops_per_socket;
        let spent = limit > 0 && self.ops_on_socket >= limit;
        let usable = result.as_ref().err().is_none_or(OpError::socket_survives);
        if usable && !spent {
            self.ceremony_socket = Some(ws);
        } else if usable {
            ws.close().await;
        }
        result
    }

    /// `register.begin` + `register.finish` with a token. The first registration is the user's
    /// own account (its key is kept for logins); later ones (register and mixed modes) use a
    /// throwaway authenticator so the user's key stays small.
    pub(super) async fn register(
        &mut self,
        ws: &mut Socket,
        username: &str,
    ) -> Result<(), OpError> {
        let opts = &self.ctx.shared.options;
        let begin = json!({"type": "register.begin", "id": 1, "username": username, "token": true});
        let options = ws.request(begin.to_string(), "register.options").await?;
        let public_key = &options["publicKey"];
        if public_key["rp"]["id"] != opts.rp_id.as_str() {
            return Err(OpError::Authenticator);
        }
        let own = self.token.is_none();
        let credential = if own {
            let mut key = self
                .account
                .key
                .lock()
                .map_err(|_| OpError::Authenticator)?;
            key.register(public_key, &opts.origin)
        } else {
            SoftAuthenticator::new().register(public_key, &opts.origin)
        }
        .map_err(|_| OpError::Authenticator)?;
        let finish = json!({
            "type": "register.finish",
            "id": 2,
            "ceremonyId": options["ceremonyId"],
            "credential": credential,
        });
        let result = ws.request(finish.to_string(), "register.result").await?;
        let token = issued_token(&result)?;
        if own {
            self.token = Some(token);
        }
        Ok(())
    }

    /// `login.begin` + `login.finish` with a token (usernameless with `--discoverable`).
    pub(super) async fn login(&mut self, ws: &mut Socket) -> Result<(), OpError> {
        let opts = &self.ctx.shared.options;
        let begin = if opts.discoverable {
            json!({"type": "login.begin", "id": 3, "token": true})
        } else {
            json!({"type": "login.begin", "id": 3, "username": self.account.username, "token": true})
        };
        let options = ws.request(begin.to_string(), "login.options").await?;
        let public_key = &options["publicKey"];
        if public_key["rpId"] != opts.rp_id.as_str() {
            return Err(OpError::Authenticator);
        }
        let credential = self
            .account
            .key
            .lock()
            .map_err(|_| OpError::Authenticator)?
            .login(public_key, &opts.origin)
            .map_err(|_| OpError::Authenticator)?;
        let finish = json!({
            "type": "login.finish",
            "id": 4,
            "ceremonyId": options["ceremonyId"],
            "credential": credential,
        });
        let result = ws.request(finish.to_string(), "login.result").await?;
        self.token = Some(issued_token(&result)?);
        Ok(())
    }

    /// Opens a protected socket with the user's token and proves it works with one exchange.
    pub(super) async fn open_protected(&mut self) -> Result<Socket, OpError> {
        let opts = &self.ctx.shared.options;
        let token = self.token.as_deref().ok_or(OpError::Unexpected)?;
        let bearer = (opts.connect_auth == ConnectAuth::Header).then_some(token);
        let mut socket = Socket::open(
            self.client(),
            &opts.connect_url,
            &opts.origin,
            bearer,
            opts.timeout,
        )
        .await?;
        if opts.connect_auth == ConnectAuth::Frame {
            let auth = json!({"type": "auth", "id": 0, "token": token});
            socket.request(auth.to_string(), "auth.result").await?;
        }
        Ok(socket)
    }

    /// `connect`: open a protected socket, exchange one frame, then the full closing handshake
    /// up to the end of the TCP stream, which is when a browser's `close` event fires.
    pub(super) async fn connect(&mut self) -> Result<(), OpError> {
        let mut socket = self.open_protected().await?;
        // `/echo` sends it back, `/chat` and `/ws` answer `pong`: any text reply will do.
        socket.send(r#"{"type":"ping","id":1}"#.to_owned()).await?;
        socket.recv().await?;
        socket.close_handshake().await
    }

    /// `http`: one GET with the token as `Authorization: Bearer`; any 2xx is a success.
    pub(super) async fn http_get(&mut self) -> Result<(), OpError> {
        let opts = &self.ctx.shared.options;
        let token = self.token.as_deref().ok_or(OpError::Unexpected)?;
        let mut response = self
            .client()
            .get(&opts.http_url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| match e {
                awc::error::SendRequestError::Timeout => OpError::Timeout,
                _ => OpError::Connect,
            })?;
        let status = response.status();
        response.body().await.map_err(|_| OpError::Closed(None))?;
        if status.is_success() {
            Ok(())
        } else {
            Err(OpError::Http(status.as_u16()))
        }
    }
}

fn issued_token(result: &Value) -> Result<String, OpError> {
    result["authentication"]["token"]
        .as_str()
        .map(str::to_owned)
        .ok_or(OpError::Unexpected)
}
