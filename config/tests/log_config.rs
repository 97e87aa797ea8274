//! `log-driver` and `log-opts` in daemon.json: dockerd's keys and messages,
//! replace-not-merge, and what a reload reports.

mod common;

use berth_config::{check, ConfigStore, LogConfig};
use common::{assert_one_error_containing, Env};

#[test]
fn defaults_are_json_file_without_options() {
    let env = Env::new();
    let (c, _) = check(&env.flags()).unwrap();
    assert_eq!(c.log_defaults(), LogConfig::builtin());
}

#[test]
fn valid_settings_load() {
    let env = Env::new();
    env.write(r#"{"log-driver":"local","log-opts":{"max-size":"10m","max-file":"3"}}"#);
    let (c, _) = check(&env.flags()).unwrap();
    assert_eq!(c.log_driver, "local");
    assert_eq!(c.log_opts["max-size"], "10m");
    env.write(r#"{"log-driver":"none"}"#);
    assert_eq!(check(&env.flags()).unwrap().0.log_driver, "none");
}

#[test]
fn bad_settings_name_the_key_with_dockerds_text() {
    let env = Env::new();
    env.write(r#"{"log-driver":"foo"}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-driver: error looking up logging plugin foo: plugin \"foo\" not found");
    env.write(r#"{"log-driver":"journald"}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-driver: berth does not support the journald logging driver");
    env.write(r#"{"log-opts":{"bogus":"1"}}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-opts: unknown log opt 'bogus' for json-file log driver");
    env.write(r#"{"log-driver":"local","log-opts":{"max-size":"1q"}}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-opts: invalid value for max-size: 1q: invalid size: '1q'");
    env.write(r#"{"log-opts":{"max-file":3}}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-opts: must be an object of strings");
    env.write(r#"{"log-driver":1}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "log-driver: must be a string");
    env.write(r#"{"log-driver":"none","log-opts":{"max-size":"1m"}}"#);
    assert_one_error_containing(&check(&env.flags()).unwrap_err(), "invalid logging opts for driver none");
}

#[test]
fn reload_replaces_and_reports_for_new_containers() {
    let env = Env::new();
    env.write(r#"{"log-opts":{"max-size":"1m","max-file":"2"}}"#);
    let store = ConfigStore::open(env.flags()).unwrap();
    assert_eq!(store.snapshot().config.log_opts.len(), 2);
    // Removing a key goes back to the default (replace, not merge).
    env.write(r#"{"log-driver":"local"}"#);
    let r = store.reload(false).unwrap();
    let change = r.log_defaults.clone().expect("the change is reported");
    assert_eq!(change.old.driver, "json-file");
    assert_eq!(change.new, LogConfig { driver: "local".into(), opts: Default::default() });
    assert!(!r.is_noop());
    assert_eq!(store.snapshot().config.log_defaults(), change.new);
    // Unchanged: nothing reported.
    assert!(store.reload(false).unwrap().log_defaults.is_none());
    // A bad value fails the reload and keeps the live config.
    env.write(r#"{"log-driver":"local","log-opts":{"max-file":"x"}}"#);
    store.reload(false).unwrap_err();
    assert_eq!(store.snapshot().config.log_driver, "local");
}
