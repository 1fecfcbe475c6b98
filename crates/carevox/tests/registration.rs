//! Registration records reach the audit monitor as logins do: repeated
//! refused registrations of one user raise the failed-login alert, and a
//! registration from a new network raises that alert.
#![cfg(feature = "audit")]
#![allow(clippy::unwrap_used)]

use carevox::audit::monitor::{Alert, Monitor, MonitorConfig};
use carevox::redact::Pii;
use carevox::registration::{
    RefusalReason, RegistrationEvent, RegistrationSubject, registration_record,
};

fn subject(addr: &'static str) -> RegistrationSubject<'static> {
    RegistrationSubject {
        user_id: Pii::new("nurse.ana"),
        network_address: Pii::new(Some(addr)),
        transport: Some("tls"),
        call_id: Pii::new(None),
        digest_algorithm: Some("SHA-256"),
    }
}

#[test]
fn refused_registrations_raise_the_failed_login_alert() {
    let mut monitor = Monitor::new(MonitorConfig::default());
    let mut alerts = Vec::new();
    for i in 0..5u64 {
        let r = registration_record(
            &RegistrationEvent::Refused {
                reason: RefusalReason::BadCredentials,
                locked_until: None,
            },
            &subject("192.0.2.7"),
            1_700_000_000 + i,
            "pbx",
        );
        monitor.observe(i, &r, &mut alerts);
    }
    assert!(
        alerts
            .iter()
            .any(|a| matches!(a, Alert::RepeatedFailedLogins { count: 5, .. })),
        "{alerts:?}"
    );
}

#[test]
fn a_registration_from_a_new_network_raises_an_alert() {
    let mut monitor = Monitor::new(MonitorConfig::default());
    let mut alerts = Vec::new();
    let registered = RegistrationEvent::Registered {
        contacts: 1,
        expires_secs: 600,
    };
    let home = registration_record(&registered, &subject("192.0.2.7"), 1_700_000_000, "pbx");
    monitor.observe(0, &home, &mut alerts);
    let away = registration_record(&registered, &subject("203.0.113.9"), 1_700_000_600, "pbx");
    monitor.observe(1, &away, &mut alerts);
    assert!(
        alerts.iter().any(|a| matches!(a, Alert::NewNetwork { .. })),
        "{alerts:?}"
    );
}
