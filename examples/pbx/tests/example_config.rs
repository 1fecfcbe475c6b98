//! The shipped `pbx.example.toml` parses, and every value in it is the
//! default except the site-specific lines it names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use carevox_pbx::config::{Config, ConfigError};

const EXAMPLE: &str = include_str!("../pbx.example.toml");

#[test]
fn the_example_is_the_defaults_but_for_its_site_specific_lines() {
    let example = Config::from_toml(EXAMPLE).expect("the example parses");
    let mut expected = Config::default();
    expected.server.realm = "clinic.example".to_owned();
    expected.server.domains = vec!["pbx.clinic.example".to_owned()];
    expected.tls.listen = vec![
        "192.0.2.10:5061".parse().unwrap(),
        "[2001:db8::10]:5061".parse().unwrap(),
    ];
    assert_eq!(example, expected);
    assert_eq!(
        EXAMPLE.matches("(site-specific").count(),
        3,
        "the example says which lines differ from the defaults"
    );
}

#[test]
fn the_examples_commented_dangerous_lines_parse_and_are_reported() {
    let uncommented: String = EXAMPLE
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            Some(rest)
                if ["udp_listen", "tcp_listen", "allow_md5"]
                    .iter()
                    .any(|k| rest.starts_with(k)) =>
            {
                rest
            }
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    // The commented UDP and TCP lines share 127.0.0.1:5060, which UDP and
    // TCP may.
    let config = Config::from_toml(&uncommented).expect("the dangerous lines parse");
    assert_eq!(config.dangerous_settings().len(), 3);
}

#[test]
fn every_key_of_the_example_is_documented_by_a_comment_above_it() {
    let lines: Vec<&str> = EXAMPLE.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        let is_setting = !line.starts_with('#') && line.contains(" = ");
        if is_setting {
            let above = lines.get(i.wrapping_sub(1)).copied().unwrap_or("");
            assert!(
                above.starts_with('#'),
                "line {}: a setting without a comment above it",
                i + 1
            );
        }
    }
}

#[test]
fn a_load_error_names_the_file_and_the_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pbx.toml");
    std::fs::write(&path, "[lockout]\nmax_delay_secs = 5\n").unwrap();
    let err = Config::load(&path).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("pbx.toml"), "{text}");
    assert!(
        text.contains("line 2, column 18, at `lockout.max_delay_secs`"),
        "{text}"
    );
    assert!(matches!(
        err,
        carevox_pbx::config::LoadError::Config {
            source: ConfigError::Invalid(_),
            ..
        }
    ));
}
