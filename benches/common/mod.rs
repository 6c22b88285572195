//! Fixtures the benches share: our ceremony service on a real sled in a temporary directory,
//! and a software authenticator with a passkey registered through it.
#![allow(dead_code)]

use std::sync::Arc;

use serde_json::Value;
use webauthn_rs::prelude::{
    Passkey, PublicKeyCredential, RegisterPublicKeyCredential, RequestChallengeResponse, Webauthn,
};
use wsauthn::ceremony::{build_webauthn, Ceremonies};
use wsauthn::clock::SystemClock;
use wsauthn::endpoints::DisconnectHook;
use wsauthn::events::Events;
use wsauthn::softkey::SoftAuthenticator;
use wsauthn::state::AppState;
use wsauthn::store::Store;
use wsauthn::tokens::SessionMeta;
use wsauthn::Config;

/// The origin of `Config::default()`, which the authenticator writes into client data.
pub const ORIGIN: &str = "http://localhost:8080";
pub const USERNAME: &str = "bench@example.com";

/// The server's state on a sled store in `dir`, wired as `App::build` wires it.
pub fn server_state(dir: &std::path::Path, config: Config) -> AppState {
    let store = Store::open(dir).expect("sled opens");
    AppState::new(
        config,
        store,
        Arc::new(SystemClock),
        Arc::new(DisconnectHook),
        Events::new(None),
    )
    .expect("state")
}

pub struct SignInFixture {
    /// Holds the sled directory for as long as the fixture lives.
    pub dir: tempfile::TempDir,
    /// The server's state, wired as `App::build` wires it (sessions persisted to the store).
    pub state: AppState,
    pub ceremonies: Ceremonies,
    /// A webauthn-rs instance built from the same config as the one inside `ceremonies`.
    pub webauthn: Webauthn,
    pub key: SoftAuthenticator,
    /// The registered passkey as the store holds it.
    pub passkey: Passkey,
    pub runtime: tokio::runtime::Runtime,
}

impl SignInFixture {
    /// A fresh store with one account ([`USERNAME`]) and its passkey, registered through
    /// `register_begin` / `register_finish`.
    pub fn new() -> Self {
        Self::with_config(|_| {})
    }

    pub fn with_config(configure: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let mut config = Config::for_tests(dir.path()).expect("embedded config");
        configure(&mut config);
        let webauthn = build_webauthn(&config).expect("webauthn");
        let state = server_state(dir.path(), config);
        let ceremonies = state.ceremonies.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let mut key = SoftAuthenticator::new();
        let (id, options) = runtime
            .block_on(ceremonies.register_begin(
                USERNAME,
                None,
                false,
                None,
                None,
                wsauthn::Transport::WebSocket,
            ))
            .expect("register.begin");
        let options = serde_json::to_value(&options).expect("options encode");
        let credential: RegisterPublicKeyCredential = serde_json::from_value(
            key.register(&options["publicKey"], ORIGIN)
                .expect("authenticator registers"),
        )
        .expect("credential decodes");
        let registered = runtime
            .block_on(ceremonies.register_finish(
                &id,
                &credential,
                false,
                wsauthn::Transport::Http,
                &meta(),
            ))
            .expect("register.finish");
        let passkey = runtime
            .block_on(
                ceremonies
                    .store()
                    .credentials_of(&registered.signed_in.user.id),
            )
            .expect("store reads")
            .remove(0)
            .passkey;
        SignInFixture {
            dir,
            state,
            ceremonies,
            webauthn,
            key,
            passkey,
            runtime,
        }
    }

    /// What the browser would answer to `options`, as the JSON a client sends.
    pub fn assertion_json(&mut self, options: &RequestChallengeResponse) -> Value {
        let options = serde_json::to_value(options).expect("options encode");
        self.key
            .login(&options["publicKey"], ORIGIN)
            .expect("authenticator signs")
    }

    /// As [`assertion_json`](Self::assertion_json), decoded as the server decodes it.
    pub fn assertion(&mut self, options: &RequestChallengeResponse) -> PublicKeyCredential {
        serde_json::from_value(self.assertion_json(options)).expect("credential decodes")
    }
}

/// What the HTTP layer records about where a session was created.
pub fn meta() -> SessionMeta {
    SessionMeta {
        user_agent: Some("wsauthn-bench".into()),
        address: Some(std::net::Ipv4Addr::LOCALHOST.into()),
        credential_id: None,
    }
}
