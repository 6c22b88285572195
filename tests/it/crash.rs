//! kill -9 under load: concurrent registrations, sign-ins, refreshes and logouts against the real
//! binary, killed at a random moment, over several rounds on one data directory. After every
//! restart nothing acknowledged is lost and nothing revoked comes back:
//! - every acknowledged registration signs in (by name), with its counter still accepted;
//! - every acknowledged logout's token, and every token a refresh replaced, is refused;
//! - every token an acknowledged refresh handed out works (refresh is flushed), unless revoked.
//!
//! Operations whose answer did not arrive before the kill prove nothing either way and are not
//! checked.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_codec::Framed;
use awc::ws::{Codec, Frame, Message};
use awc::BoxedSocket;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use wsauthn::softkey::SoftAuthenticator;

use crate::helpers::*;
use crate::persistence::{http_at, Server};

/// A socket that reports failure instead of panicking: the server may die at any moment.
struct Client {
    framed: Framed<BoxedSocket, Codec>,
}

impl Client {
    async fn open(addr: SocketAddr) -> Option<Client> {
        let (_, framed) = awc::Client::new()
            .ws(format!("ws://{addr}/ws"))
            .header("Origin", ORIGIN)
            .connect()
            .await
            .ok()?;
        Some(Client { framed })
    }

    async fn request(&mut self, frame: Value) -> Option<Value> {
        self.framed
            .send(Message::Text(frame.to_string().into()))
            .await
            .ok()?;
        loop {
            match tokio::time::timeout(PATIENCE, self.framed.next())
                .await
                .ok()??
            {
                Ok(Frame::Text(t)) => return serde_json::from_slice(&t).ok(),
                Ok(Frame::Ping(p)) => self.framed.send(Message::Pong(p)).await.ok()?,
                _ => return None,
            }
        }
    }

    async fn ceremony(
        &mut self,
        key: &mut SoftAuthenticator,
        kind: &str,
        name: &str,
    ) -> Option<Value> {
        let begin = json!({"type": format!("{kind}.begin"), "username": name, "token": true});
        let opts = self.request(begin).await?;
        let credential = match kind {
            "register" => key.register(&opts["publicKey"], ORIGIN).ok()?,
            _ => key.login(&opts["publicKey"], ORIGIN).ok()?,
        };
        let finish = json!({"type": format!("{kind}.finish"), "ceremonyId": opts["ceremonyId"], "credential": credential});
        let result = self.request(finish).await?;
        (result["verified"] == "ok").then_some(result)
    }
}

/// What the clients were told, across rounds.
#[derive(Default)]
struct Ledger {
    users: Vec<(String, SoftAuthenticator)>,
    /// Tokens whose revocation was acknowledged.
    revoked: Vec<String>,
    /// Tokens an acknowledged refresh handed out, not revoked since.
    refreshed: Vec<String>,
}

/// A tiny deterministic PRNG (xorshift64*), so a failing round can be replayed from its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

/// One client's loop until the server dies: register, then sign in, refresh and log out.
async fn worker(addr: SocketAddr, ledger: Arc<Mutex<Ledger>>, id: usize, round: usize) {
    let mut n = 0;
    loop {
        n += 1;
        let Some(mut client) = Client::open(addr).await else {
            return;
        };
        let name = format!("r{round}w{id}n{n}");
        let mut key = SoftAuthenticator::new();
        let Some(registered) = client.ceremony(&mut key, "register", &name).await else {
            return;
        };
        let token = registered["authentication"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        ledger.lock().unwrap().users.push((name.clone(), key));
        // Sign in again (a counter update) on a fresh socket; then refresh and log out.
        let Some(mut other) = Client::open(addr).await else {
            return;
        };
        let mut key = {
            let mut l = ledger.lock().unwrap();
            let (_, k) = l.users.iter_mut().find(|(n, _)| *n == name).unwrap();
            std::mem::take(k)
        };
        let signed_in = other.ceremony(&mut key, "login", &name).await;
        restore_key(&ledger, &name, key);
        let Some(signed_in) = signed_in else { return };
        let second = signed_in["authentication"]["token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let Some(refreshed) = other.request(json!({"type":"refresh"})).await else {
            return;
        };
        let Some(new) = refreshed["authentication"]["token"]
            .as_str()
            .map(str::to_owned)
        else {
            return;
        };
        {
            let mut l = ledger.lock().unwrap();
            l.revoked.push(second);
            l.refreshed.push(new.clone());
        }
        let Some(out) = client.request(json!({"type":"logout"})).await else {
            return;
        };
        if out["type"] == "logout.result" {
            ledger.lock().unwrap().revoked.push(token);
        }
        // Once the logout is sent, a kill before its answer leaves the token's fate unknown.
        ledger.lock().unwrap().refreshed.retain(|t| *t != new);
        let Some(out) = other.request(json!({"type":"logout"})).await else {
            return;
        };
        if out["type"] == "logout.result" {
            ledger.lock().unwrap().revoked.push(new);
        }
    }
}

fn restore_key(ledger: &Mutex<Ledger>, name: &str, key: SoftAuthenticator) {
    let mut l = ledger.lock().unwrap();
    if let Some((_, k)) = l.users.iter_mut().find(|(n, _)| n == name) {
        *k = key;
    }
}

#[actix_web::test]
async fn kill_9_under_load_loses_nothing_acknowledged_and_revives_nothing_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let mut rng = Rng(0x5EED_0FC0_FFEE);
    for round in 0..4 {
        let server = Server::start(dir.path());
        check(server.addr, &ledger, round).await;
        let workers: Vec<_> = (0..6)
            .map(|id| actix_web::rt::spawn(worker(server.addr, ledger.clone(), id, round)))
            .collect();
        let kill_after = Duration::from_millis(150 + rng.next() % 600);
        tokio::time::sleep(kill_after).await;
        server.kill();
        for w in workers {
            let _ = w.await;
        }
    }
    let server = Server::start(dir.path());
    check(server.addr, &ledger, 4).await;
    let l = ledger.lock().unwrap();
    eprintln!(
        "crash: {} users, {} revoked and {} refreshed tokens checked after 4 kills",
        l.users.len(),
        l.revoked.len(),
        l.refreshed.len()
    );
    assert!(
        l.users.len() >= 8 && l.revoked.len() >= 4,
        "too little load to prove anything: {} users, {} revoked",
        l.users.len(),
        l.revoked.len()
    );
}

/// After a restart: everything acknowledged is there, nothing revoked is back.
async fn check(addr: SocketAddr, ledger: &Mutex<Ledger>, round: usize) {
    let (users, revoked, refreshed) = {
        let mut l = ledger.lock().unwrap();
        let users: Vec<(String, SoftAuthenticator)> = l.users.drain(..).collect();
        (users, l.revoked.clone(), l.refreshed.clone())
    };
    let mut checked = Vec::new();
    for (name, mut key) in users {
        let mut client = Client::open(addr)
            .await
            .expect("the restarted server accepts sockets");
        let opts = client
            .request(json!({"type":"login.begin","username":name,"token":true}))
            .await
            .expect("login.begin answered");
        assert_eq!(
            opts["type"], "login.options",
            "round {round}: acknowledged user {name}: {opts}"
        );
        let credential = key
            .login(&opts["publicKey"], ORIGIN)
            .expect("the key signs");
        let finish =
            json!({"type":"login.finish","ceremonyId":opts["ceremonyId"],"credential":credential});
        let result = client.request(finish).await.expect("login.finish answered");
        assert_eq!(
            result["verified"], "ok",
            "round {round}: acknowledged user {name}: {result}"
        );
        checked.push((name, key));
    }
    ledger.lock().unwrap().users = checked;
    for token in &revoked {
        assert_eq!(
            http_at(addr, "GET", "/api/me", token).await.0,
            401,
            "round {round}: a revoked token works again"
        );
    }
    for token in &refreshed {
        assert_eq!(
            http_at(addr, "GET", "/api/me", token).await.0,
            200,
            "round {round}: a refreshed token was lost"
        );
    }
}
