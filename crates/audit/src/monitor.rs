//! Monitoring rules over the record stream: the suspicious patterns HIPAA
//! guidance asks organisations to watch for, raised as typed alerts.
//!
//! Rules are deterministic: they read time only from the records
//! (`occurred`), so replaying a log gives the same alerts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::net::IpAddr;

use serde::Serialize;

use carevox_redact::Pii;

use crate::record::{Action, AuthMethod, EventType, Record, Timestamp};

/// Working hours in local time; access outside them raises an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// Start, minutes after local midnight (inclusive).
    pub start_minute: u16,
    /// End, minutes after local midnight (exclusive).
    pub end_minute: u16,
    /// Local time minus UTC, in minutes.
    pub utc_offset_minutes: i16,
    /// Saturdays and Sundays count as outside working hours.
    pub weekdays_only: bool,
}

/// The rules and their thresholds.
#[derive(Debug, Clone)]
pub struct MonitorConfig {
    /// Failed logins of one user or from one address that raise an alert
    /// (0 disables the rule).
    pub failed_logins: u32,
    /// The window for `failed_logins`, in milliseconds.
    pub failed_login_window_ms: u64,
    /// Alert on a successful login from a network the user was not seen on.
    pub new_network: bool,
    /// Prefix length that makes an IPv4 address's network.
    pub ipv4_prefix: u8,
    /// Prefix length that makes an IPv6 address's network.
    pub ipv6_prefix: u8,
    /// Alert on every emergency ("break the glass") access.
    pub break_the_glass: bool,
    /// Working hours, if access outside them should raise an alert.
    pub working_hours: Option<WorkingHours>,
    /// Distinct patients touched by one user that raise an alert (0 disables).
    pub many_patients: u32,
    /// The window for `many_patients`, in milliseconds.
    pub many_patients_window_ms: u64,
    /// Reads of data (records with action `Read` naming a patient or an
    /// object) by one user within the window that raise an alert: a bulk
    /// export, or someone trawling (0 disables; the default).
    pub bulk_reads: u32,
    /// The window for `bulk_reads`, in milliseconds.
    pub bulk_read_window_ms: u64,
    /// When not empty, the working-hours and bulk-read rules count only
    /// records whose actor authenticated in one of these ways (people at a
    /// console, say, and not phones or the system's own services). Empty
    /// (the default): every record counts.
    pub access_by: Vec<AuthMethod>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            failed_logins: 5,
            failed_login_window_ms: 10 * 60_000,
            new_network: true,
            ipv4_prefix: 24,
            ipv6_prefix: 64,
            break_the_glass: true,
            working_hours: None,
            many_patients: 30,
            many_patients_window_ms: 60 * 60_000,
            bulk_reads: 0,
            bulk_read_window_ms: 10 * 60_000,
            access_by: Vec::new(),
        }
    }
}

/// Who a failed-login alert is about.
///
/// The user id or address is a [`Pii`]: `Debug` prints `<redacted>` for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum LoginSubject {
    /// One user id.
    User(Pii<String>),
    /// One network address.
    Address(Pii<String>),
}

/// A typed alert.
///
/// User ids, addresses, patient references and justifications are [`Pii`]:
/// `Debug` prints the kind, counts, sequence number and time, and
/// `<redacted>` for them. The JSON form (serde) carries them all, for the
/// people entitled to read alerts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "alert")]
#[non_exhaustive]
pub enum Alert {
    /// Repeated failed logins within the window.
    RepeatedFailedLogins {
        /// The user or address.
        subject: LoginSubject,
        /// Failures counted in the window.
        count: u32,
        /// The record that crossed the threshold.
        seq: u64,
        /// When.
        at: Timestamp,
    },
    /// A successful login from a network not seen before for that user.
    NewNetwork {
        /// The user.
        user: Pii<String>,
        /// The network, as `address/prefix`.
        network: Pii<String>,
        /// The record.
        seq: u64,
        /// When.
        at: Timestamp,
    },
    /// Emergency access.
    BreakTheGlass {
        /// The user.
        user: Pii<String>,
        /// The patient, if named.
        patient: Option<Pii<String>>,
        /// The justification given.
        justification: Pii<String>,
        /// The record.
        seq: u64,
        /// When.
        at: Timestamp,
    },
    /// Access to patient data outside working hours.
    OutsideWorkingHours {
        /// The user.
        user: Pii<String>,
        /// The record.
        seq: u64,
        /// When.
        at: Timestamp,
    },
    /// One user read data many times within the window (a bulk export).
    BulkReads {
        /// The user.
        user: Pii<String>,
        /// Reads counted in the window.
        reads: u32,
        /// The record that crossed the threshold.
        seq: u64,
        /// When.
        at: Timestamp,
    },
    /// One user touched many distinct patients within the window.
    ManyPatients {
        /// The user.
        user: Pii<String>,
        /// Distinct patients in the window.
        distinct: u32,
        /// The record that crossed the threshold.
        seq: u64,
        /// When.
        at: Timestamp,
    },
}

/// Applies the rules to records in log order.
///
/// `Debug` prints the configuration and how many users, addresses and
/// networks it tracks, never who.
#[derive(Clone)]
pub struct Monitor {
    config: MonitorConfig,
    failed_by_user: BTreeMap<Pii<String>, VecDeque<u64>>,
    failed_by_addr: BTreeMap<Pii<String>, VecDeque<u64>>,
    networks: BTreeMap<Pii<String>, BTreeSet<String>>,
    patients: BTreeMap<Pii<String>, VecDeque<(u64, Pii<String>)>>,
    reads: BTreeMap<Pii<String>, VecDeque<u64>>,
}

// Not a redaction: the maps are keyed by user ids and addresses, and grow
// with the log, so `Debug` prints how many each holds and none of the keys.
impl std::fmt::Debug for Monitor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Monitor")
            .field("config", &self.config)
            .field("users_with_failed_logins", &self.failed_by_user.len())
            .field("addresses_with_failed_logins", &self.failed_by_addr.len())
            .field("users_with_known_networks", &self.networks.len())
            .field("users_touching_patients", &self.patients.len())
            .field("users_reading", &self.reads.len())
            .finish()
    }
}

fn network_of(addr: &str, v4: u8, v6: u8) -> Option<String> {
    let ip: IpAddr = addr.parse().ok()?;
    Some(match ip {
        IpAddr::V4(a) => {
            let bits = u32::from(v4.min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            let net = std::net::Ipv4Addr::from(u32::from(a) & mask);
            format!("{net}/{bits}")
        }
        IpAddr::V6(a) => {
            let bits = u32::from(v6.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            let net = std::net::Ipv6Addr::from(u128::from(a) & mask);
            format!("{net}/{bits}")
        }
    })
}

/// Counts `t` into a sliding window; true when it reaches `threshold`
/// (the window then starts afresh, so one burst raises one alert).
fn count_in_window(q: &mut VecDeque<u64>, t: u64, window: u64, threshold: u32) -> Option<u32> {
    while q.front().is_some_and(|&f| t.saturating_sub(f) > window) {
        q.pop_front();
    }
    q.push_back(t);
    let n = u32::try_from(q.len()).unwrap_or(u32::MAX);
    if n >= threshold {
        q.clear();
        Some(n)
    } else {
        None
    }
}

impl Monitor {
    /// A monitor with these rules.
    pub fn new(config: MonitorConfig) -> Self {
        Monitor {
            config,
            failed_by_user: BTreeMap::new(),
            failed_by_addr: BTreeMap::new(),
            networks: BTreeMap::new(),
            patients: BTreeMap::new(),
            reads: BTreeMap::new(),
        }
    }

    /// Applies every rule to record `seq`, pushing alerts into `out`.
    pub fn observe(&mut self, seq: u64, r: &Record, out: &mut Vec<Alert>) {
        let t = r.occurred.0;
        let user = &r.actor.user_id;
        let cfg = &self.config;
        if r.event == EventType::Login {
            if r.outcome.is_failure() {
                if cfg.failed_logins > 0 {
                    let q = self.failed_by_user.entry(user.clone()).or_default();
                    if let Some(count) =
                        count_in_window(q, t, cfg.failed_login_window_ms, cfg.failed_logins)
                    {
                        out.push(Alert::RepeatedFailedLogins {
                            subject: LoginSubject::User(user.clone()),
                            count,
                            seq,
                            at: r.occurred,
                        });
                    }
                    if let Some(addr) = &r.actor.network_address {
                        let q = self.failed_by_addr.entry(addr.clone()).or_default();
                        if let Some(count) =
                            count_in_window(q, t, cfg.failed_login_window_ms, cfg.failed_logins)
                        {
                            out.push(Alert::RepeatedFailedLogins {
                                subject: LoginSubject::Address(addr.clone()),
                                count,
                                seq,
                                at: r.occurred,
                            });
                        }
                    }
                }
            } else if let Some(net) = r
                .actor
                .network_address
                .as_ref()
                .and_then(|a| network_of(a.expose(), cfg.ipv4_prefix, cfg.ipv6_prefix))
            {
                let seen = self.networks.entry(user.clone()).or_default();
                // The first login sets the baseline; later ones are compared.
                if cfg.new_network && !seen.is_empty() && !seen.contains(&net) {
                    out.push(Alert::NewNetwork {
                        user: user.clone(),
                        network: Pii::new(net.clone()),
                        seq,
                        at: r.occurred,
                    });
                }
                seen.insert(net);
            }
        }
        if cfg.break_the_glass
            && let crate::record::PurposeOfUse::Emergency { justification } = &r.purpose
        {
            out.push(Alert::BreakTheGlass {
                user: user.clone(),
                patient: r.entity.patient.clone(),
                justification: justification.clone(),
                seq,
                at: r.occurred,
            });
        }
        let touches_data = r.entity.patient.is_some() || r.entity.object.is_some();
        let counted = cfg.access_by.is_empty() || cfg.access_by.contains(&r.actor.auth);
        if let Some(h) = cfg.working_hours
            && touches_data
            && counted
            && !within_hours(r.occurred, h)
        {
            out.push(Alert::OutsideWorkingHours {
                user: user.clone(),
                seq,
                at: r.occurred,
            });
        }
        if cfg.bulk_reads > 0 && touches_data && counted && r.action == Action::Read {
            let q = self.reads.entry(user.clone()).or_default();
            if let Some(reads) = count_in_window(q, t, cfg.bulk_read_window_ms, cfg.bulk_reads) {
                out.push(Alert::BulkReads {
                    user: user.clone(),
                    reads,
                    seq,
                    at: r.occurred,
                });
            }
        }
        if cfg.many_patients > 0
            && let Some(p) = &r.entity.patient
        {
            let q = self.patients.entry(user.clone()).or_default();
            while q
                .front()
                .is_some_and(|(f, _)| t.saturating_sub(*f) > cfg.many_patients_window_ms)
            {
                q.pop_front();
            }
            q.push_back((t, p.clone()));
            let distinct: BTreeSet<&str> = q.iter().map(|(_, p)| p.expose().as_str()).collect();
            let n = u32::try_from(distinct.len()).unwrap_or(u32::MAX);
            if n >= cfg.many_patients {
                q.clear();
                out.push(Alert::ManyPatients {
                    user: user.clone(),
                    distinct: n,
                    seq,
                    at: r.occurred,
                });
            }
        }
    }
}

fn within_hours(at: Timestamp, h: WorkingHours) -> bool {
    let minutes =
        i64::try_from(at.0 / 60_000).unwrap_or(i64::MAX) + i64::from(h.utc_offset_minutes);
    let day = minutes.div_euclid(1440);
    let minute = minutes.rem_euclid(1440);
    // 1970-01-01 was a Thursday: Monday is 0.
    let weekday = (day + 3).rem_euclid(7);
    if h.weekdays_only && weekday >= 5 {
        return false;
    }
    let (s, e) = (i64::from(h.start_minute), i64::from(h.end_minute));
    if s <= e {
        (s..e).contains(&minute)
    } else {
        minute >= s || minute < e
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::record::{Action, Outcome, PurposeOfUse};

    const T0: u64 = 1_772_352_000_000; // Sunday 2026-03-01 08:00 UTC

    fn login(user: &str, addr: &str, ok: bool, t: u64) -> Record {
        let mut r = Record::new(
            EventType::Login,
            Action::Execute,
            if ok {
                Outcome::Success
            } else {
                Outcome::MinorFailure
            },
            Timestamp(t),
            user,
            "sbc",
        );
        r.actor.network_address = Some(addr.into());
        r
    }

    fn access(user: &str, patient: &str, t: u64) -> Record {
        let mut r = Record::new(
            EventType::PatientRecordAccess,
            Action::Read,
            Outcome::Success,
            Timestamp(t),
            user,
            "ehr",
        );
        r.entity.patient = Some(patient.into());
        r
    }

    fn run(m: &mut Monitor, recs: &[Record]) -> Vec<Alert> {
        let mut out = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            m.observe(i as u64, r, &mut out);
        }
        out
    }

    #[test]
    fn failed_logins_per_user_and_per_address_within_the_window() {
        let mut m = Monitor::new(MonitorConfig {
            failed_logins: 3,
            failed_login_window_ms: 60_000,
            ..MonitorConfig::default()
        });
        // Spread out: no alert. Then three in 20 s from different addresses.
        let recs = vec![
            login("ann", "10.0.0.1", false, T0),
            login("ann", "10.0.0.2", false, T0 + 100_000),
            login("ann", "10.0.0.3", false, T0 + 200_000),
            login("ann", "10.0.0.4", false, T0 + 210_000),
            login("ann", "10.0.0.5", false, T0 + 220_000),
            // One address, three users.
            login("bob", "192.0.2.9", false, T0 + 300_000),
            login("cat", "192.0.2.9", false, T0 + 301_000),
            login("dan", "192.0.2.9", false, T0 + 302_000),
        ];
        let alerts = run(&mut m, &recs);
        assert_eq!(
            alerts,
            vec![
                Alert::RepeatedFailedLogins {
                    subject: LoginSubject::User("ann".into()),
                    count: 3,
                    seq: 4,
                    at: Timestamp(T0 + 220_000)
                },
                Alert::RepeatedFailedLogins {
                    subject: LoginSubject::Address("192.0.2.9".into()),
                    count: 3,
                    seq: 7,
                    at: Timestamp(T0 + 302_000)
                },
            ]
        );
    }

    #[test]
    fn new_network_after_a_baseline() {
        let mut m = Monitor::new(MonitorConfig::default());
        let recs = vec![
            login("ann", "10.1.2.3", true, T0),
            login("ann", "10.1.2.77", true, T0 + 1),
            login("ann", "203.0.113.5", true, T0 + 2),
            login("ann", "2001:db8::1", true, T0 + 3),
            login("ann", "203.0.113.6", true, T0 + 4),
            login("ann", "198.51.100.1", false, T0 + 5),
        ];
        let alerts = run(&mut m, &recs);
        let nets: Vec<_> = alerts
            .iter()
            .map(|a| match a {
                Alert::NewNetwork { network, seq, .. } => (network.expose().as_str(), *seq),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(nets, vec![("203.0.113.0/24", 2), ("2001:db8::/64", 3)]);
    }

    #[test]
    fn break_the_glass_hours_and_many_patients() {
        let mut m = Monitor::new(MonitorConfig {
            many_patients: 4,
            many_patients_window_ms: 600_000,
            working_hours: Some(WorkingHours {
                start_minute: 7 * 60,
                end_minute: 19 * 60,
                utc_offset_minutes: 60,
                weekdays_only: false,
            }),
            ..MonitorConfig::default()
        });
        let mut btg = access("eve", "P1", T0);
        btg.purpose = PurposeOfUse::Emergency {
            justification: "unresponsive".into(),
        };
        let recs = vec![
            btg,
            access("eve", "P2", T0 + 1000),
            access("eve", "P2", T0 + 2000),
            access("eve", "P3", T0 + 3000),
            access("eve", "P4", T0 + 4000),
            // 18:30 UTC is 19:30 local: outside.
            access("fay", "P9", T0 + 10 * 3_600_000 + 30 * 60_000),
        ];
        let alerts = run(&mut m, &recs);
        assert!(
            matches!(&alerts[0], Alert::BreakTheGlass { user, patient: Some(p), .. } if user.expose() == "eve" && p.expose() == "P1")
        );
        let shown = format!("{:?} {m:?}", alerts[0]);
        for phi in ["eve", "P1", "unresponsive"] {
            assert!(!shown.contains(phi), "{phi} leaked into {shown}");
        }
        assert!(shown.contains("BreakTheGlass") && shown.contains("<redacted>"));
        assert!(matches!(
            &alerts[1],
            Alert::ManyPatients {
                distinct: 4,
                seq: 4,
                ..
            }
        ));
        assert!(matches!(
            &alerts[2],
            Alert::OutsideWorkingHours { seq: 5, .. }
        ));
        assert_eq!(alerts.len(), 3);

        // Weekdays only: 2026-03-01 is a Sunday.
        let mut m = Monitor::new(MonitorConfig {
            working_hours: Some(WorkingHours {
                start_minute: 0,
                end_minute: 1440,
                utc_offset_minutes: 0,
                weekdays_only: true,
            }),
            ..MonitorConfig::default()
        });
        let alerts = run(
            &mut m,
            &[
                access("gus", "P1", T0),
                access("gus", "P1", T0 + 86_400_000),
            ],
        );
        assert_eq!(alerts.len(), 1, "Sunday only: {alerts:?}");
    }

    #[test]
    fn bulk_reads_by_people_at_a_console_only() {
        let mut m = Monitor::new(MonitorConfig {
            bulk_reads: 3,
            bulk_read_window_ms: 60_000,
            many_patients: 0,
            working_hours: Some(WorkingHours {
                start_minute: 0,
                end_minute: 1,
                utc_offset_minutes: 0,
                weekdays_only: false,
            }),
            access_by: vec![AuthMethod::PasswordMfa],
            ..MonitorConfig::default()
        });
        let by = |user: &str, auth: AuthMethod, action: Action, t: u64| {
            let mut r = access(user, "P1", t);
            r.actor.auth = auth;
            r.action = action;
            r
        };
        let recs = vec![
            // A service's reads and a phone's: not counted, no alert.
            by("vm", AuthMethod::None, Action::Read, T0),
            by("vm", AuthMethod::None, Action::Read, T0 + 1),
            by("vm", AuthMethod::None, Action::Read, T0 + 2),
            by("bob", AuthMethod::SipDigest, Action::Read, T0 + 3),
            // A person: a write is no read; the third read in the window
            // raises one alert, and every one of theirs is after hours.
            by("kim", AuthMethod::PasswordMfa, Action::Create, T0 + 4),
            by("kim", AuthMethod::PasswordMfa, Action::Read, T0 + 5),
            by("kim", AuthMethod::PasswordMfa, Action::Read, T0 + 6),
            by("kim", AuthMethod::PasswordMfa, Action::Read, T0 + 7),
            // Outside the window the count starts again.
            by("kim", AuthMethod::PasswordMfa, Action::Read, T0 + 120_000),
        ];
        let alerts = run(&mut m, &recs);
        let bulk: Vec<_> = alerts
            .iter()
            .filter_map(|a| match a {
                Alert::BulkReads { reads, seq, .. } => Some((*reads, *seq)),
                _ => None,
            })
            .collect();
        assert_eq!(bulk, vec![(3, 7)]);
        let after_hours: Vec<u64> = alerts
            .iter()
            .filter_map(|a| match a {
                Alert::OutsideWorkingHours { seq, .. } => Some(*seq),
                _ => None,
            })
            .collect();
        assert_eq!(after_hours, vec![4, 5, 6, 7, 8]);
        assert!(!format!("{alerts:?}").contains("kim"));
    }
}
