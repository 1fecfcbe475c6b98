//! `Config::from_toml` never panics, whatever the text, and every error it
//! gives points inside the text.

use carevox_pbx::config::{Config, ConfigError};
use proptest::prelude::*;

const EXAMPLE: &str = include_str!("../pbx.example.toml");

fn check(text: &str) -> Result<(), TestCaseError> {
    let lines = u32::try_from(text.split('\n').count()).unwrap_or(u32::MAX);
    match Config::from_toml(text) {
        Ok(_) => {}
        Err(ConfigError::Syntax { location, .. }) => {
            prop_assert!(location.line >= 1 && location.line <= lines);
            prop_assert!(location.column >= 1);
        }
        Err(ConfigError::Invalid(all)) => {
            prop_assert!(!all.is_empty());
            for i in all {
                prop_assert!(i.location.line >= 1 && i.location.line <= lines);
                prop_assert!(!i.location.path.is_empty());
            }
        }
        Err(_) => {}
    }
    Ok(())
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,200}") {
        check(&text)?;
    }

    #[test]
    fn the_example_with_one_value_changed_never_panics(
        line in 0usize..140,
        value in prop_oneof![
            Just("0".to_owned()),
            Just("-1".to_owned()),
            Just("18446744073709551615".to_owned()),
            Just("\"\"".to_owned()),
            Just("[]".to_owned()),
            Just("true".to_owned()),
            "[a-z0-9\":./\\[\\] -]{0,12}",
        ],
    ) {
        let text: String = EXAMPLE
            .lines()
            .enumerate()
            .map(|(i, l)| match l.split_once(" = ") {
                Some((key, _)) if i == line && !l.starts_with('#') => format!("{key} = {value}"),
                _ => l.to_owned(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        check(&text)?;
    }
}
