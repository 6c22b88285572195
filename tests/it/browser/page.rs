//! A browser tab as a person uses it: open the demo, click, type, read, wait for what the page
//! shows, and hold a passkey in a virtual authenticator (the DevTools `WebAuthn` domain).
//!
//! Each [`Page`] lives in a browser context of its own (separate cookies, storage and
//! authenticator), so two pages are two people.

use base64::Engine;
use serde_json::{json, Value};

use super::cdp::{next_event, Cdp};
use super::chromium::Chromium;
use super::BROWSER_PATIENCE;

/// A running browser and the DevTools connection to it. Dropping it kills the browser.
pub struct Browser {
    pub cdp: Cdp,
    _chromium: Chromium,
}

impl Browser {
    pub async fn launch(executable: &std::path::Path) -> Browser {
        let chromium = Chromium::launch(executable);
        let cdp = Cdp::connect(&chromium.devtools_url).await;
        Browser {
            cdp,
            _chromium: chromium,
        }
    }

    /// A new tab in a fresh browser context, with a virtual platform authenticator (resident
    /// keys, user verification that succeeds, presence confirmed automatically).
    pub async fn new_page(&self) -> Page {
        let cdp = self.cdp.clone();
        let context = cdp
            .send(None, "Target.createBrowserContext", json!({}))
            .await;
        let target = cdp
            .send(
                None,
                "Target.createTarget",
                json!({"url": "about:blank", "browserContextId": context["browserContextId"]}),
            )
            .await;
        let attached = cdp
            .send(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let session = attached["sessionId"]
            .as_str()
            .expect("sessionId")
            .to_owned();
        for domain in ["Page.enable", "Runtime.enable"] {
            cdp.send(Some(&session), domain, json!({})).await;
        }
        cdp.send(
            Some(&session),
            "WebAuthn.enable",
            json!({"enableUI": false}),
        )
        .await;
        let authenticator = cdp
            .send(
                Some(&session),
                "WebAuthn.addVirtualAuthenticator",
                json!({"options": {
                    "protocol": "ctap2",
                    "transport": "internal",
                    "hasResidentKey": true,
                    "hasUserVerification": true,
                    "isUserVerified": true,
                    "automaticPresenceSimulation": true,
                }}),
            )
            .await["authenticatorId"]
            .as_str()
            .expect("authenticatorId")
            .to_owned();
        Page {
            cdp,
            session,
            authenticator,
        }
    }
}

/// One tab, driven through its DevTools session.
pub struct Page {
    cdp: Cdp,
    session: String,
    authenticator: String,
}

impl Page {
    async fn send(&self, method: &str, params: Value) -> Value {
        self.cdp.send(Some(&self.session), method, params).await
    }

    /// Sets the viewport, as a phone (`mobile`) or a laptop would have it.
    pub async fn set_viewport(&self, width: u32, height: u32, mobile: bool) {
        self.send(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile}),
        )
        .await;
    }

    /// Opens `url` and waits until the demo has loaded and wired itself up.
    pub async fn open(&self, url: &str) {
        let mut events = self.cdp.events();
        let navigated = self.send("Page.navigate", json!({"url": url})).await;
        assert!(
            navigated.get("errorText").is_none(),
            "cannot open {url}: {navigated}"
        );
        next_event(&mut events, &self.session, "Page.loadEventFired").await;
        self.wait_for(
            "the demo is ready",
            "document.body.dataset.ready === 'true'",
        )
        .await;
    }

    /// Reloads the page and waits until the demo is ready again.
    pub async fn reload(&self) {
        let mut events = self.cdp.events();
        self.send("Page.reload", json!({})).await;
        next_event(&mut events, &self.session, "Page.loadEventFired").await;
        self.wait_for(
            "the demo is ready",
            "document.body.dataset.ready === 'true'",
        )
        .await;
    }

    /// Evaluates `expression` in the page (awaiting a promise) and returns its value.
    pub async fn eval(&self, expression: &str) -> Value {
        let reply = self
            .send(
                "Runtime.evaluate",
                json!({"expression": expression, "awaitPromise": true, "returnByValue": true}),
            )
            .await;
        if let Some(details) = reply.get("exceptionDetails") {
            panic!(
                "the page threw evaluating {expression}: {}\n{}",
                details["exception"]["description"],
                self.diagnostics()
            );
        }
        reply["result"]["value"].clone()
    }

    /// Waits until the JavaScript `condition` is truthy and returns its value. The page checks
    /// it on every DOM change (a MutationObserver), so this returns as soon as the page shows
    /// it; the deadline is only a safety net for a page that never gets there.
    pub async fn wait_for(&self, what: &str, condition: &str) -> Value {
        let millis = BROWSER_PATIENCE.as_millis();
        let script = format!(
            r#"new Promise((resolve) => {{
                const check = () => {{ try {{ return ({condition}); }} catch (e) {{ return undefined; }} }};
                let observer, timer;
                const finish = (ok, value) => {{ observer.disconnect(); clearTimeout(timer); resolve({{ ok, value }}); }};
                observer = new MutationObserver(() => {{ const v = check(); if (v) finish(true, v); }});
                observer.observe(document.documentElement, {{ subtree: true, childList: true, attributes: true, characterData: true }});
                timer = setTimeout(() => finish(false, null), {millis});
                const now = check();
                if (now) finish(true, now);
            }})"#
        );
        let outcome = self.eval(&script).await;
        if outcome["ok"] != true {
            panic!(
                "timed out after {BROWSER_PATIENCE:?} waiting until {what} ({condition}): {outcome}\n{}",
                self.diagnostics_now().await
            );
        }
        outcome["value"].clone()
    }

    /// The visible text of the element `selector` (empty when it is hidden).
    pub async fn text(&self, selector: &str) -> String {
        let selector = json!(selector);
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector}); return el && !el.closest('[hidden]') ? el.innerText : ''; }})()"
        ))
        .await
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    /// An attribute of `selector`, or null.
    pub async fn attribute(&self, selector: &str, name: &str) -> Value {
        let (selector, name) = (json!(selector), json!(name));
        self.eval(&format!(
            "document.querySelector({selector})?.getAttribute({name}) ?? null"
        ))
        .await
    }

    /// Clicks the middle of `selector` with the mouse, once it is visible and enabled, and checks
    /// that the click reached it (a layout shift between aiming and clicking would miss).
    pub async fn click(&self, selector: &str) {
        let quoted = json!(selector);
        for _ in 0..3 {
            let point = self
                .wait_for(
                    &format!("{selector} can be clicked"),
                    &format!(
                        r#"(() => {{
                            const el = document.querySelector({quoted});
                            if (!el || el.disabled || el.closest('[hidden]')) return null;
                            el.scrollIntoView({{ block: 'center' }});
                            const r = el.getBoundingClientRect();
                            const x = r.x + r.width / 2, y = r.y + r.height / 2;
                            if (!el.contains(document.elementFromPoint(x, y))) return null;
                            window.__clicked = false;
                            el.addEventListener('click', () => {{ window.__clicked = true; }}, {{ once: true }});
                            return {{ x, y }};
                        }})()"#
                    ),
                )
                .await;
            for kind in ["mousePressed", "mouseReleased"] {
                self.send(
                    "Input.dispatchMouseEvent",
                    json!({"type": kind, "x": point["x"], "y": point["y"], "button": "left", "clickCount": 1}),
                )
                .await;
            }
            if self.eval("window.__clicked").await == true {
                return;
            }
        }
        panic!(
            "three clicks on {selector} missed it\n{}",
            self.diagnostics_now().await
        );
    }

    /// Puts `text` into the input `selector` without focusing it, as a password manager fills a
    /// field. (Focusing the username field starts the page's passkey autofill, which the
    /// virtual authenticator answers at once; tests of the button must not do that.)
    pub async fn fill(&self, selector: &str, text: &str) {
        let (selector, text) = (json!(selector), json!(text));
        self.eval(&format!(
            "(() => {{ const el = document.querySelector({selector}); el.value = {text}; el.dispatchEvent(new Event('input', {{ bubbles: true }})); }})()"
        ))
        .await;
    }

    /// Clicks into the input `selector` and types `text` with the keyboard.
    pub async fn type_into(&self, selector: &str, text: &str) {
        self.click(selector).await;
        self.send("Input.insertText", json!({"text": text})).await;
    }

    /// Moves the mouse to the top-left corner, off every control (no hover effects).
    pub async fn move_mouse_away(&self) {
        self.send(
            "Input.dispatchMouseEvent",
            json!({"type": "mouseMoved", "x": 0, "y": 0}),
        )
        .await;
    }

    /// A PNG of the viewport.
    pub async fn screenshot(&self) -> Vec<u8> {
        let shot = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": false}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64")
    }

    /// Runs axe-core (from `web/node_modules`, installed by `npm ci --prefix web`) on the page as
    /// it is now and returns its serious and critical violations, one line each. `None` (after
    /// saying so) where axe-core is not installed and this is not CI.
    pub async fn accessibility_violations(&self) -> Option<Vec<String>> {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/web/node_modules/axe-core/axe.min.js"
        );
        let source = match std::fs::read_to_string(path) {
            Ok(source) => source,
            Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!("no axe-core at {path} ({e}); CI must run `npm ci --prefix web`")
            }
            Err(e) => {
                eprintln!(
                    "SKIPPING the accessibility check: no {path} ({e}); run npm ci --prefix web"
                );
                return None;
            }
        };
        // DevTools evaluation is not bound by the page's Content-Security-Policy.
        if self.eval("typeof window.axe").await != "object" {
            self.eval(&format!("{source};\ntypeof window.axe")).await;
        }
        let found = self
            .eval(
                r#"axe.run(document, { resultTypes: ["violations"] }).then((r) =>
                    r.violations
                        .filter((v) => v.impact === "serious" || v.impact === "critical")
                        .map((v) => `${v.impact} ${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`))"#,
            )
            .await;
        Some(
            found
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|v| v.as_str().unwrap_or_default().to_owned())
                        .collect()
                })
                .unwrap_or_default(),
        )
    }

    /// A PNG of the whole page, below the fold too, at the current viewport's width.
    pub async fn screenshot_full(&self) -> Vec<u8> {
        let size = self
            .eval("({ width: document.documentElement.clientWidth, height: document.documentElement.scrollHeight })")
            .await;
        let shot = self
            .send(
                "Page.captureScreenshot",
                json!({"format": "png", "captureBeyondViewport": true,
                       "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}}),
            )
            .await;
        base64::engine::general_purpose::STANDARD
            .decode(shot["data"].as_str().expect("screenshot data"))
            .expect("screenshot is base64")
    }

    // -- the virtual authenticator -------------------------------------------------------------

    async fn authenticator(&self, method: &str, mut params: Value) -> Value {
        params["authenticatorId"] = json!(self.authenticator);
        self.send(method, params).await
    }

    /// Whether the authenticator's user verification (fingerprint, PIN) succeeds.
    pub async fn set_user_verified(&self, verified: bool) {
        self.authenticator(
            "WebAuthn.setUserVerified",
            json!({"isUserVerified": verified}),
        )
        .await;
    }

    /// Whether the authenticator confirms user presence by itself. Off, every request waits
    /// for a touch that never comes, like a prompt a person has not answered yet.
    pub async fn set_presence(&self, automatic: bool) {
        self.authenticator(
            "WebAuthn.setAutomaticPresenceSimulation",
            json!({"enabled": automatic}),
        )
        .await;
    }

    /// Makes the authenticator misbehave: `isBogusSignature`, `isBadUV`, `isBadUP`.
    pub async fn override_response_bits(&self, bits: Value) {
        self.authenticator("WebAuthn.setResponseOverrideBits", bits)
            .await;
    }

    /// The passkeys the authenticator holds.
    pub async fn credentials(&self) -> Vec<Value> {
        let reply = self
            .authenticator("WebAuthn.getCredentials", json!({}))
            .await;
        reply["credentials"].as_array().cloned().unwrap_or_default()
    }

    /// Waits until the authenticator holds `count` passkeys (the browser changes them by itself
    /// when told to by the Signal API).
    pub async fn wait_for_credentials(&self, count: usize) {
        let deadline = tokio::time::Instant::now() + BROWSER_PATIENCE;
        while self.credentials().await.len() != count {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the authenticator still holds {} passkeys, not {count}",
                self.credentials().await.len()
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn clear_credentials(&self) {
        self.authenticator("WebAuthn.clearCredentials", json!({}))
            .await;
    }

    pub async fn add_credential(&self, credential: Value) {
        self.authenticator("WebAuthn.addCredential", json!({"credential": credential}))
            .await;
    }

    // -- diagnostics -----------------------------------------------------------------------------

    fn diagnostics(&self) -> String {
        let console = self.cdp.console(&self.session);
        if console.is_empty() {
            "(the page logged nothing)".to_owned()
        } else {
            format!("the page's console:\n  {}", console.join("\n  "))
        }
    }

    /// The page's state and text, then its console, for a failure message.
    async fn diagnostics_now(&self) -> String {
        let state = self
            .cdp
            .call(
                Some(&self.session),
                "Runtime.evaluate",
                json!({
                    "expression": "JSON.stringify(document.body.dataset) + '\\n' + document.body.innerText",
                    "returnByValue": true,
                }),
            )
            .await
            .map(|r| r["result"]["value"].as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| format!("(cannot read the page: {e})"));
        format!("the page shows: {state}\n{}", self.diagnostics())
    }
}
