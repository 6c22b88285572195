//! The loader's layers and its errors: each names the key, where the value came from, what was
//! expected and an example.

use std::path::PathBuf;

use super::*;

fn env(pairs: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<Vec<_>>()
        .into_iter()
}

fn file_error(text: &str) -> String {
    Config::from_layers(Some(("/etc/wsauthn.toml".into(), text.into())), env(&[]))
        .unwrap_err()
        .to_string()
}

fn env_error(pairs: &[(&str, &str)]) -> String {
    Config::from_layers(None, env(pairs))
        .unwrap_err()
        .to_string()
}

#[test]
fn embedded_defaults_are_valid_and_match_the_protocol_defaults() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.server.bind, "127.0.0.1:8080");
    assert_eq!(c.webauthn.rp_id, "localhost");
    assert_eq!(c.webauthn.origins, vec!["http://localhost:8080"]);
    assert_eq!(c.tokens.lifetime_secs, 86_400);
    assert_eq!(c.tokens.idle_timeout_secs, 3_600);
    assert_eq!(c.websocket.max_frame_bytes, 65_536);
    assert_eq!(c.websocket.auth_deadline_ms, 10_000);
    assert_eq!(c.endpoints.paths["/api/me"], AuthPolicy::Required);
    assert_eq!(c.endpoints.paths["/ws"], AuthPolicy::None);
    assert_eq!(c.log.format, LogFormat::Text);
    assert!(c.log.access);
    assert!(!c.tls());
}

#[test]
fn a_file_overrides_only_the_keys_it_names() {
    let file = "[server]\nbind = \"0.0.0.0:9000\"\n".to_string();
    let c = Config::from_layers(Some(("f.toml".into(), file)), std::iter::empty()).unwrap();
    assert_eq!(c.server.bind, "0.0.0.0:9000");
    assert_eq!(c.server.data_dir, PathBuf::from("./data"));
}

#[test]
fn environment_overrides_keep_their_types() {
    let c = Config::from_layers(
        None,
        env(&[
            ("WSAUTHN__TOKENS__LIFETIME_SECS", "600"),
            ("WSAUTHN__SERVER__DATA_DIR", "/tmp/x"),
            ("WSAUTHN__WEBSOCKET__ALLOW_MISSING_ORIGIN", "false"),
            ("WSAUTHN__WEBAUTHN__RP_NAME", "1234"),
            ("WSAUTHN__LOG__FORMAT", "json"),
            ("UNRELATED", "1"),
            // Other tools' WSAUTHN_ variables (docs/backend-api.md's shell) are not ours.
            ("WSAUTHN_ADMIN_KEY", "x"),
            ("WSAUTHN", "http://localhost:8080"),
        ]),
    )
    .unwrap();
    assert_eq!(c.tokens.lifetime_secs, 600);
    assert_eq!(c.server.data_dir, PathBuf::from("/tmp/x"));
    assert!(!c.websocket.allow_missing_origin);
    assert_eq!(
        c.webauthn.rp_name, "1234",
        "a string key keeps digits as text"
    );
    assert_eq!(c.log.format, LogFormat::Json);
}

#[test]
fn rp_id_that_is_not_a_suffix_of_an_origin_host_is_refused() {
    let err = env_error(&[("WSAUTHN__WEBAUTHN__RP_ID", "example.com")]);
    assert!(err.contains("webauthn.rp_id"), "{err}");
    assert!(err.contains("\"example.com\""), "{err}");
    assert!(err.contains("http://localhost:8080"), "{err}");
    assert!(err.contains("WSAUTHN__WEBAUTHN__RP_ID"), "{err}");
}

#[test]
fn lookalike_domain_is_not_a_suffix() {
    let file = "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://badexample.com\"]\n";
    let err = Config::from_layers(Some(("f".into(), file.into())), std::iter::empty());
    assert!(err.is_err());
    let file = "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://chat.example.com\"]\n";
    assert!(Config::from_layers(Some(("f".into(), file.into())), std::iter::empty()).is_ok());
}

#[test]
fn a_wrongly_typed_value_names_key_file_line_expectation_and_example() {
    let err = file_error("# tokens\n[tokens]\nlifetime_secs = \"1d\"\n");
    for part in [
        "tokens.lifetime_secs",
        "/etc/wsauthn.toml line 3",
        "the string \"1d\"",
        "whole number of seconds",
        "lifetime_secs = 86400 in [tokens]",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let err = file_error("[webauthn]\n\norigins = \"https://chat.example.com\"\n");
    for part in [
        "webauthn.origins",
        "line 3",
        "a list",
        "origins = [\"https://chat.example.com\"] in [webauthn]",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let err = env_error(&[("WSAUTHN__TOKENS__LIFETIME_SECS", "1d")]);
    assert!(
        err.contains("environment variable WSAUTHN__TOKENS__LIFETIME_SECS"),
        "{err}"
    );
    assert!(
        err.contains("WSAUTHN__TOKENS__LIFETIME_SECS=86400"),
        "{err}"
    );
}

#[test]
fn a_misspelled_choice_names_the_key_line_and_the_choices() {
    let err = file_error("[endpoints.paths]\n\"/api/me\" = \"requierd\"\n");
    for part in [
        "endpoints.paths.\"/api/me\"",
        "line 2",
        "requierd",
        "`required`",
        "`none`",
    ] {
        assert!(err.contains(part), "{part:?} in {err}");
    }
    let err = file_error("[webauthn]\nresident_key = \"preffered\"\n");
    assert!(err.contains("webauthn.resident_key"), "{err}");
    assert!(err.contains("`preferred`"), "{err}");
    assert!(
        err.contains("resident_key = \"required\" in [webauthn]"),
        "{err}"
    );
    let err = file_error("[log]\nformat = \"jsno\"\n");
    assert!(
        err.contains("log.format") && err.contains("`json`"),
        "{err}"
    );
}

#[test]
fn unknown_keys_are_named_with_their_line_and_the_key_that_was_meant() {
    let err = file_error("[server]\nbind = \"0.0.0.0:1\"\nbnid = 1\n");
    assert!(err.contains("server.bnid"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    assert!(err.contains("did you mean server.bind?"), "{err}");
    let err = file_error("[sever]\nbind = \"0.0.0.0:1\"\n");
    assert!(
        err.contains("sever.bind") && err.contains("server.bind"),
        "{err}"
    );
    let err = file_error("bind = \"0.0.0.0:1\"\n[server]\n");
    assert!(
        err.contains("config key bind ") && err.contains("did you mean server.bind?"),
        "{err}"
    );
}

#[test]
fn variables_that_look_like_overrides_but_name_no_key_are_refused() {
    let err = env_error(&[("WSAUTHN_SERVER_BIND", "0.0.0.0:8080")]);
    assert!(err.contains("WSAUTHN_SERVER_BIND"), "{err}");
    assert!(err.contains("single underscores"), "{err}");
    assert!(err.contains("WSAUTHN__SERVER__BIND"), "{err}");
    let err = env_error(&[("WSAUTHN__SERVER__BINDD", "0.0.0.0:8080")]);
    assert!(
        err.contains("WSAUTHN__SERVER__BINDD names no config key"),
        "{err}"
    );
    assert!(err.contains("did you mean WSAUTHN__SERVER__BIND?"), "{err}");
    let err = env_error(&[("WSAUTHN__SERVER", "x")]);
    assert!(err.contains("names no config key"), "{err}");
}

#[test]
fn plain_http_origins_are_only_for_loopback_hosts() {
    for ok in [
        "http://localhost:8080",
        "http://app.localhost:3000",
        "http://127.0.0.1:8080",
        "http://[::1]:8080",
    ] {
        let origins = format!("[\"{ok}\"]");
        let rp = url::Url::parse(ok).unwrap().host_str().unwrap().to_owned();
        let rp = rp
            .trim_start_matches("app.")
            .trim_matches(['[', ']'])
            .to_owned();
        let result = Config::from_layers(
            None,
            env(&[
                ("WSAUTHN__WEBAUTHN__ORIGINS", &origins),
                ("WSAUTHN__WEBAUTHN__RP_ID", &rp),
            ]),
        );
        if rp.contains(':') {
            // An IPv6 rp id is not a domain; only the origin rule is checked here.
            assert!(!result.unwrap_err().to_string().contains("plain http"));
        } else {
            result.unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }
    let err = env_error(&[
        (
            "WSAUTHN__WEBAUTHN__ORIGINS",
            "[\"http://chat.example.com\"]",
        ),
        ("WSAUTHN__WEBAUTHN__RP_ID", "example.com"),
    ]);
    assert!(err.contains("webauthn.origins"), "{err}");
    assert!(err.contains("plain http://"), "{err}");
    assert!(err.contains("https://chat.example.com"), "{err}");
}

#[test]
fn validation_errors_name_the_key_and_where_its_value_came_from() {
    let err = file_error("[websocket]\nheartbeat_interval_ms = 1000\nheartbeat_timeout_ms = 500\n");
    assert!(err.contains("websocket.heartbeat_timeout_ms"), "{err}");
    assert!(err.contains("line 3"), "{err}");
    let err = env_error(&[("WSAUTHN__SERVER__BIND", "nowhere")]);
    assert!(err.contains("server.bind"), "{err}");
    assert!(err.contains("WSAUTHN__SERVER__BIND=0.0.0.0:8080"), "{err}");
    let err = env_error(&[("WSAUTHN__WEBAUTHN__ORIGINS", "[\"ftp://x\"]")]);
    assert!(err.contains("webauthn.origins"), "{err}");
    let err = file_error("[server");
    assert!(err.contains("/etc/wsauthn.toml line 1"), "{err}");
    let err = file_error("[server]\ntls_cert = \"/c.pem\"\n");
    assert!(
        err.contains("server.tls_cert") && err.contains("line 2"),
        "{err}"
    );
    assert!(err.contains("server.tls_key is empty"), "{err}");
    let err = Config {
        tokens: TokenConfig {
            lifetime_secs: 0,
            ..Config::embedded().unwrap().tokens
        },
        ..Config::embedded().unwrap()
    }
    .validate()
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("config key tokens.lifetime_secs must be at least 1"),
        "{err}"
    );
}

#[test]
fn the_printed_config_loads_back_with_its_secrets_redacted() {
    let key = "0123456789abcdef0123456789abcdef0123";
    let c = Config::from_layers(
        None,
        env(&[
            ("WSAUTHN__ADMIN__API_KEY", key),
            ("WSAUTHN__TOKENS__LIFETIME_SECS", "600"),
        ]),
    )
    .unwrap();
    let printed = c.to_toml().unwrap();
    assert!(!printed.contains(key), "{printed}");
    assert!(printed.contains("api_key = \"<redacted>\""), "{printed}");
    assert!(printed.contains("lifetime_secs = 600"), "{printed}");
    assert!(printed.contains("\"/api/me\" = \"required\""), "{printed}");
    // Pasted back, the placeholder is refused; with the key set again it loads as it was.
    let err = Config::from_layers(Some(("p.toml".into(), printed.clone())), env(&[]))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("admin.api_key") && err.contains("placeholder"),
        "{err}"
    );
    let again = Config::from_layers(
        Some(("p.toml".into(), printed)),
        env(&[("WSAUTHN__ADMIN__API_KEY", key)]),
    )
    .unwrap();
    assert_eq!(again.to_toml().unwrap(), c.to_toml().unwrap());
}

#[test]
fn the_server_warns_when_no_origin_is_its_own_address() {
    let c = Config::embedded().unwrap();
    let at = |s: &str| s.parse::<std::net::SocketAddr>().unwrap();
    assert_eq!(c.origin_warning(at("127.0.0.1:8080"), false), None);
    assert_eq!(c.origin_warning(at("0.0.0.0:8080"), false), None);
    let warning = c.origin_warning(at("127.0.0.1:9090"), false).unwrap();
    assert!(warning.contains("http://127.0.0.1:9090"), "{warning}");
    assert!(warning.contains("http://localhost:8080"), "{warning}");
    assert!(
        c.origin_warning(at("127.0.0.1:8080"), true).is_some(),
        "TLS wants https://"
    );
    assert!(
        c.origin_warning(at("192.0.2.1:8080"), false).is_some(),
        "not loopback"
    );
}

#[test]
fn related_origins_need_not_be_under_the_rp_id_but_must_be_origins() {
    let file = "[webauthn]\nrp_id = \"example.com\"\norigins = [\"https://example.com\"]\n\
                related_origins = [\"https://example.co.uk\"]\n";
    let c = Config::from_layers(Some(("f".into(), file.into())), std::iter::empty()).unwrap();
    let all: Vec<String> = c.origins().unwrap().iter().map(|u| u.to_string()).collect();
    assert_eq!(all, ["https://example.com/", "https://example.co.uk/"]);
    let bad = "[webauthn]\nrelated_origins = [\"https://example.co.uk/path\"]\n";
    let err = Config::from_layers(Some(("f".into(), bad.into())), std::iter::empty())
        .unwrap_err()
        .to_string();
    assert!(err.contains("webauthn.related_origins"), "{err}");
    assert!(err.contains("f line 2"), "{err}");
}

#[test]
fn a_proxy_table_s_keys_are_named_with_its_index() {
    let err = file_error("[[proxy]]\npath = \"/game\"\nupstream = \"ftp://x\"\n");
    assert!(err.contains("config key proxy[0].upstream"), "{err}");
    assert!(err.contains("line 1"), "{err}");
    let err = file_error(
        "[[proxy]]\npath = \"/a\"\nupstream = \"http://127.0.0.1:1\"\n\n\
         [[proxy]]\npath = \"/b\"\nupstrem = \"http://127.0.0.1:2\"\n",
    );
    assert!(err.contains("config key proxy[1].upstrem"), "{err}");
    let c = Config::from_layers(
        Some((
            "f.toml".into(),
            "[[proxy]]\npath = \"/game\"\nupstream = \"http://127.0.0.1:9000\"\n".into(),
        )),
        env(&[]),
    )
    .unwrap();
    assert_eq!(c.proxy.len(), 1);
    assert!(
        Config::embedded().unwrap().proxy.is_empty(),
        "none by default"
    );
}

#[test]
fn store_problems_name_the_key() {
    let c = Config::embedded().unwrap();
    assert_eq!(c.store.backend, crate::store::BackendKind::Sled);
    assert_eq!(c.store.postgres_url, "");
    let url = "postgres://wsauthn@127.0.0.1:5432/wsauthn";
    let c = Config::from_layers(
        None,
        env(&[
            ("WSAUTHN__STORE__BACKEND", "postgres"),
            ("WSAUTHN__STORE__POSTGRES_URL", url),
        ]),
    )
    .unwrap();
    assert_eq!(c.store.backend, crate::store::BackendKind::Postgres);
    assert_eq!(c.store.postgres_url, url);
    let err = env_error(&[("WSAUTHN__STORE__BACKEND", "postgres")]);
    assert!(err.contains("config key store.postgres_url"), "{err}");
    assert!(err.contains("is empty"), "{err}");
    let err = env_error(&[
        ("WSAUTHN__STORE__BACKEND", "postgres"),
        ("WSAUTHN__STORE__POSTGRES_URL", "postgres://h:notaport/db"),
    ]);
    assert!(err.contains("config key store.postgres_url"), "{err}");
    assert!(err.contains("WSAUTHN__STORE__POSTGRES_URL"), "{err}");
    let err = file_error("[store]\nbackend = \"mysql\"\n");
    assert!(err.contains("store.backend"), "{err}");
}
