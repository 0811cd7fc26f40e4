//! Tests of the configuration: defaults, file, environment, flags, redaction.

use super::*;

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[test]
fn env_wins_over_file_and_unknown_keys_fail() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let file = dir.path().join("frontdesk.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:9000\"\nlog = \"debug\"\n[limits]\nmax_page_size = 50\n",
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    let config = Config::load(Some(&file), &env(&[("FRONTDESK_BIND", "0.0.0.0:7000")]))
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(config.bind.to_string(), "0.0.0.0:7000");
    assert_eq!(config.log, "debug");
    assert_eq!(config.limits.max_page_size, 50);

    std::fs::write(&file, "bnd = \"127.0.0.1:9000\"\n").unwrap_or_else(|e| unreachable!("{e}"));
    let error = Config::load(Some(&file), &env(&[]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("bnd"), "{error}");

    let error = Config::load(Some(&dir.path().join("missing.toml")), &env(&[])).err();
    assert!(error.is_some());
    let error = Config::load(None, &env(&[("FRONTDESK_BINDD", "x")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("FRONTDESK_BINDD"), "{error}");
    let error = Config::load(None, &env(&[("FRONTDESK_BIND", "nope")]))
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("FRONTDESK_BIND"), "{error}");
}

#[test]
fn openai_env_speaks_responses_unless_a_base_url_is_set() {
    let kind_of = |config: &Config| config.providers.get("openai").map(|p| p.kind);
    let official = Config::load(None, &env(&[("OPENAI_API_KEY", "sk-1")]))
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(kind_of(&official), Some(ProviderKind::OpenaiResponses));
    for vars in [
        vec![("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1")],
        vec![
            ("OPENAI_API_KEY", "sk-1"),
            ("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1"),
        ],
    ] {
        let compatible = Config::load(None, &env(&vars)).unwrap_or_else(|e| unreachable!("{e}"));
        assert_eq!(kind_of(&compatible), Some(ProviderKind::Openai), "{vars:?}");
    }

    // A declared kind stays what it says, with or without the variables.
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let file = dir.path().join("frontdesk.toml");
    std::fs::write(
        &file,
        "[providers.openai]\nkind = \"openai\"\n\n[providers.official]\nkind = \"openai_responses\"\n",
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    let declared = Config::load(Some(&file), &env(&[("OPENAI_API_KEY", "sk-1")]))
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(kind_of(&declared), Some(ProviderKind::Openai));
    assert_eq!(
        declared.providers.get("official").map(|p| p.kind),
        Some(ProviderKind::OpenaiResponses)
    );
    assert!(declared
        .show()
        .contains("[providers.official]\nkind = \"openai_responses\"\n"));
    assert_eq!(
        declared.show_json()["providers"]["official"]["kind"],
        "openai_responses"
    );

    std::fs::write(&file, "[providers.x]\nkind = \"openai-responses\"\n")
        .unwrap_or_else(|e| unreachable!("{e}"));
    assert!(Config::load(Some(&file), &env(&[])).is_err());
}

#[test]
fn providers_choose_their_http_version_and_streams_per_connection() {
    use crate::config::HttpVersion;
    let dir = tempfile::tempdir().unwrap_or_else(|e| unreachable!("{e}"));
    let file = dir.path().join("frontdesk.toml");
    std::fs::write(
        &file,
        "[providers.vllm]\nkind = \"openai\"\nbase_url = \"http://10.0.0.5:8000/v1\"\nhttp = \"http2\"\nmax_streams_per_connection = 250\n\n[providers.plain]\nkind = \"openai\"\n",
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    let config = Config::load(Some(&file), &env(&[])).unwrap_or_else(|e| unreachable!("{e}"));
    let vllm = &config.providers["vllm"];
    assert_eq!(
        (vllm.http, vllm.max_streams_per_connection),
        (HttpVersion::Http2, 250)
    );
    let plain = &config.providers["plain"];
    assert_eq!(
        (plain.http, plain.max_streams_per_connection),
        (HttpVersion::Auto, 100),
        "HTTP/2 where offered, 100 streams a connection"
    );
    assert!(config
        .show()
        .contains("http = \"http2\"\nmax_streams_per_connection = 250\n"));
    assert_eq!(config.show_json()["providers"]["vllm"]["http"], "http2");
    assert_eq!(config.show_json()["providers"]["plain"]["http"], "auto");

    for (bad, field) in [
        ("http = \"http3\"", "`http1`"),
        (
            "max_streams_per_connection = 0",
            "max_streams_per_connection",
        ),
    ] {
        std::fs::write(&file, format!("[providers.x]\nkind = \"openai\"\n{bad}\n"))
            .unwrap_or_else(|e| unreachable!("{e}"));
        let error = Config::load(Some(&file), &env(&[]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains(field), "{bad}: {error}");
    }
}

#[test]
fn show_redacts_secrets() {
    let config = Config::load(
        None,
        &env(&[
            ("DATABASE_URL", "postgres://app:s3cret@db:5432/frontdesk"),
            ("FRONTDESK_ADMIN_TOKEN", "admin-token-0123456789"),
        ]),
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    let shown = config.show();
    assert!(
        !shown.contains("s3cret") && !shown.contains("admin-token"),
        "{shown}"
    );
    assert!(
        shown.contains("postgres://app:[redacted]@db:5432/frontdesk"),
        "{shown}"
    );
    assert!(!format!("{config:?}").contains("s3cret"));
    let with_keys = Config::load(
        None,
        &env(&[
            ("OPENAI_API_KEY", "sk-live-123"),
            ("ANTHROPIC_BASE_URL", "http://127.0.0.1:9/anthropic"),
        ]),
    )
    .unwrap_or_else(|e| unreachable!("{e}"));
    assert_eq!(
        with_keys.providers["openai"].kind,
        ProviderKind::OpenaiResponses
    );
    assert_eq!(
        with_keys.providers["anthropic"].base_url.as_deref(),
        Some("http://127.0.0.1:9/anthropic")
    );
    let shown = with_keys.show() + &with_keys.show_json().to_string();
    assert!(
        shown.contains("[providers.openai]") && !shown.contains("sk-live-123"),
        "{shown}"
    );
    assert!(
        shown.contains("kind = \"openai_responses\"")
            && shown.contains("\"kind\":\"openai_responses\""),
        "{shown}"
    );
    for (url, shown) in [
        (
            "postgres://db/x?user=app&password=s3cret&sslmode=require",
            "postgres://db/x?user=app&password=[redacted]&sslmode=require",
        ),
        ("postgres://app@db/x", "postgres://app@db/x"),
        (
            "sqlite://./data/frontdesk.db",
            "sqlite://./data/frontdesk.db",
        ),
    ] {
        assert_eq!(redact_url(url), shown);
    }
}
