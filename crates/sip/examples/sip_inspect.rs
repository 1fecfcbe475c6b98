//! Parses one SIP message from a file (or standard input), prints whether a
//! server would accept it (or the status code it would answer with) and the
//! decoded headers.
//!
//! ```sh
//! cargo run -p carevox-sip --example sip_inspect -- crates/sip/tests/real/baresip-03.sip
//! printf 'OPTIONS sip:a@b SIP/2.0\r\n\r\n' | cargo run -p carevox-sip --example sip_inspect
//! ```

// A command-line tool: it reports on the terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::io::Read;
use std::process::ExitCode;

use bytes::Bytes;
use carevox_sip::{Contact, Message, ValidationPolicy, validate};

fn main() -> ExitCode {
    let mut data = Vec::new();
    let read = match std::env::args().nth(1) {
        Some(path) if path != "-" => std::fs::read(&path).map(|d| data = d),
        _ => std::io::stdin().read_to_end(&mut data).map(drop),
    };
    if let Err(e) = read {
        eprintln!("cannot read the message: {e}");
        return ExitCode::from(2);
    }
    let msg = match Message::parse(Bytes::from(data)) {
        Ok(m) => m,
        Err(e) => {
            println!(
                "verdict: refused while parsing, answer {} ({e})",
                e.status_code()
            );
            return ExitCode::FAILURE;
        }
    };
    let verdict = validate(&msg, &ValidationPolicy::default());
    match &verdict {
        Ok(v) => println!("verdict: valid ({v:?})"),
        Err(e) => println!(
            "verdict: invalid, answer {} {} ({e})",
            e.status_code(),
            e.reason_phrase()
        ),
    }
    println!("start line: {}", msg.start_line());
    for (i, via) in msg.vias().enumerate() {
        match via {
            Ok(v) => println!(
                "Via[{i}]: transport={} host={} port={:?} branch={:?} received={:?} rport={:?}",
                v.transport(),
                v.host(),
                v.port(),
                v.branch(),
                v.received(),
                v.rport()
            ),
            Err(e) => println!("Via[{i}]: {e}"),
        }
    }
    for (name, addr) in [("From", msg.from()), ("To", msg.to())] {
        match addr {
            Ok(a) => println!(
                "{name}: display={:?} uri={} tag={:?}",
                a.display_name(),
                a.uri(),
                a.tag()
            ),
            Err(e) => println!("{name}: {e}"),
        }
    }
    println!("Call-ID: {:?}", msg.call_id());
    match msg.cseq() {
        Ok(c) => println!("CSeq: {} {}", c.seq, c.method),
        Err(e) => println!("CSeq: {e}"),
    }
    println!("Max-Forwards: {:?}", msg.max_forwards());
    for contact in msg.contacts() {
        match contact {
            Ok(Contact::Star) => println!("Contact: *"),
            Ok(c) => println!(
                "Contact: uri={} expires={:?} q={:?} +sip.instance={:?}",
                c.addr().map(|a| a.uri().as_str()).unwrap_or(""),
                c.expires(),
                c.q(),
                c.sip_instance()
            ),
            Err(e) => println!("Contact: {e}"),
        }
    }
    for r in msg.routes() {
        println!("Route: {:?}", r.map(|r| r.uri().to_string()));
    }
    for r in msg.record_routes() {
        println!("Record-Route: {:?}", r.map(|r| r.uri().to_string()));
    }
    for a in msg.authorization().chain(msg.www_authenticate()) {
        match a {
            Ok(a) => println!(
                "auth: scheme={} params=[{}]",
                a.scheme(),
                a.params()
                    .iter()
                    .map(|p| p.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Err(e) => println!("auth: {e}"),
        }
    }
    println!("Content-Type: {:?}", msg.content_type());
    println!("Content-Length: {:?}", msg.content_length());
    println!(
        "Supported: {:?}  Require: {:?}  Allow: {:?}",
        msg.supported().collect::<Vec<_>>(),
        msg.require().collect::<Vec<_>>(),
        msg.allow().collect::<Vec<_>>()
    );
    println!("all header fields, as received:");
    for f in msg.headers() {
        println!("  {}: {}", f.name_str, f.value_str());
    }
    println!("body: {} bytes", msg.body().len());
    if verdict.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
