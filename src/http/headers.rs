//! Security headers on every response the server itself makes (a handler's own value wins):
//! the demo and static files cannot be framed by another site, sniffed into another type, or
//! load code from anywhere but this server, and no URL leaks through `Referer`.

use actix_web::middleware::DefaultHeaders;

/// The Content-Security-Policy: scripts, styles and images from this server only, no inline
/// code, no plugins, no framing; sockets and fetches to this server's own origins.
pub fn content_security_policy(origins: &[String]) -> String {
    let mut connect = vec!["'self'".to_owned()];
    for origin in origins {
        connect.push(origin.clone());
        // The same origin as a WebSocket URL (older engines do not let 'self' cover ws:).
        if let Some(rest) = origin.strip_prefix("https://") {
            connect.push(format!("wss://{rest}"));
        } else if let Some(rest) = origin.strip_prefix("http://") {
            connect.push(format!("ws://{rest}"));
        }
    }
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src {}; object-src 'none'; base-uri 'none'; \
         form-action 'self'; frame-ancestors 'none'",
        connect.join(" ")
    )
}

/// The middleware that adds them.
pub fn security_headers(origins: &[String]) -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", content_security_policy(origins)))
        .add(("X-Frame-Options", "DENY"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("Referrer-Policy", "no-referrer"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_sockets_to_the_configured_origins_only() {
        let csp = content_security_policy(&[
            "http://localhost:8080".into(),
            "https://chat.example.com".into(),
        ]);
        assert!(csp.contains("connect-src 'self' http://localhost:8080 ws://localhost:8080 https://chat.example.com wss://chat.example.com;"), "{csp}");
        assert!(csp.contains("frame-ancestors 'none'"));
        assert!(!csp.contains("unsafe-inline"));
    }
}
