//! What the server would answer, for `netalias explain`: the wire's twin by construction.
//!
//! The prediction is the full path's own answer ([`Responder::respond_with`], the answer rules
//! of `answer`) taken with a peeking turn, which reads the rotation without moving it, and, for
//! a name that is not ours, the forwarding policy's own decision ([`Responder::forward_plan`]).
//! This module only writes those out for people; it must not decide anything itself (a rule
//! written here would be a third copy of the answer rules, free to drift from the wire), and
//! it never asks an upstream: a forwarded name is predicted as "forwarded to", not as records.

use std::net::IpAddr;

use hickory_server::proto::{
    op::{Message, Query, ResponseCode},
    rr::{LowerName, Name, RData, Record, RecordType},
};

use super::handler::{Denied, ForwardPlan, Responder};
use crate::telemetry::{self, http::Predict};

impl Responder {
    /// What `asker` would get for `name` `qtype` now, as lines for people: `response:` (the
    /// rcode, and whether it is authoritative), each record as dig shows it under `answer:`,
    /// `authority:` and `additional:`, and a summary, `next answer:`. Takes no rotation turn:
    /// the next such question gets exactly these records in this order. A UDP answer too large
    /// for its asker is cut as `exchange` cuts it; the prediction is the whole answer (TCP's).
    pub fn predict(&self, name: &Name, qtype: RecordType, asker: IpAddr) -> Vec<String> {
        let mut request = Message::query();
        request.add_query(Query::query(name.clone(), qtype));
        request.metadata.recursion_desired = true;
        let (response, forwardable) = self.respond_with(&request, asker, self.peek_turn());
        if forwardable {
            return self.predict_forwarding(name, asker);
        }
        let code = response.metadata.response_code;
        let mut lines = vec![format!(
            "response: {}{}",
            telemetry::rcode_label(code),
            if response.metadata.authoritative {
                ", authoritative"
            } else {
                ""
            }
        )];
        for (section, records) in [
            ("answer", &response.answers),
            ("authority", &response.authorities),
            ("additional", &response.additionals),
        ] {
            lines.extend(records.iter().map(|r| format!("{section}: {r}")));
        }
        let zone = response.authorities.first().map(|soa| &soa.name);
        lines.push(format!(
            "next answer: {}",
            match (code, zone) {
                (ResponseCode::NoError, _) if !response.answers.is_empty() => {
                    rdata_list(&response.answers)
                }
                (ResponseCode::NoError, Some(zone)) => {
                    format!("no {qtype} records (NODATA, with the SOA of {zone})")
                }
                (ResponseCode::NXDomain, Some(zone)) => {
                    format!("NXDOMAIN: no such name (with the SOA of {zone})")
                }
                (code, _) => telemetry::rcode_label(code).to_string(),
            }
        ));
        lines
    }

    /// The lines for a name that is not ours: what forwarding does with it for `asker`.
    fn predict_forwarding(&self, name: &Name, asker: IpAddr) -> Vec<String> {
        let (response, summary) = match self.forward_plan(asker) {
            ForwardPlan::Forward(policy) => {
                let (upstreams, zone) = policy.forwarder.route_labels(&LowerName::new(name));
                if upstreams.is_empty() {
                    (
                        "response: SERVFAIL".to_string(),
                        "SERVFAIL: not ours, and forwarding is on but no upstream is usable"
                            .to_string(),
                    )
                } else {
                    let anyone = if policy.allow_any_client {
                        ", for any asker"
                    } else {
                        ""
                    };
                    let zone =
                        zone.map_or(String::new(), |z| format!(" (the upstreams of zone {z})"));
                    let to = format!(
                        "not ours: forwarded to {}{zone}{anyone}",
                        upstreams.join(", ")
                    );
                    (
                        format!("response: {to}"),
                        format!(
                            "{to}: the upstream's answer, relayed (SERVFAIL when none answers in time, on a loop, or with every forwarding slot busy)"
                        ),
                    )
                }
            }
            ForwardPlan::Refuse(why) => (
                "response: REFUSED".to_string(),
                format!(
                    "REFUSED: not ours, and never forwarded for {}",
                    match why {
                        Denied::InternalNetwork => "an asker whose networks are all internal",
                        Denied::Outside if self.forwards() => {
                            "a stranger (forward.allow_any_client is off)"
                        }
                        Denied::Outside => "a stranger",
                    }
                ),
            ),
            ForwardPlan::Off => (
                "response: SERVFAIL".to_string(),
                "SERVFAIL: not ours, and forwarding is off".to_string(),
            ),
        };
        vec![response, format!("next answer: {summary}")]
    }
}

/// The records' data, in order: addresses with spaces between, anything with spaces of its
/// own (SRV, SOA, HINFO) with commas.
fn rdata_list(records: &[Record]) -> String {
    let data: Vec<String> = records.iter().map(|r| r.data.to_string()).collect();
    let spaced = records
        .iter()
        .any(|r| !matches!(r.data, RData::A(_) | RData::AAAA(_) | RData::PTR(_)));
    data.join(if spaced { ", " } else { " " })
}

impl Predict for Responder {
    fn asker(&self, ip: IpAddr) -> IpAddr {
        Responder::asker(self, ip)
    }
    fn predict(&self, name: &Name, qtype: RecordType, asker: IpAddr) -> Vec<String> {
        Responder::predict(self, name, qtype, asker)
    }
}

#[cfg(test)]
mod tests {
    use std::{str::FromStr, sync::Arc};

    use super::*;
    use crate::{dns::Settings, registry::Registry};

    /// A server over the embedded default's records (`app`: three members), forwarding off.
    fn responder() -> Responder {
        let config = crate::config::Config::embedded_default().expect("embedded default");
        let registry = Arc::new(Registry::new(config.server.domain()).expect("domain"));
        crate::source::static_file::StaticSource::default().sync(&config, &registry);
        Responder::new(registry, Arc::new(Settings::new(0, 1232)))
    }

    /// The answer records of the next A question for `app.` over the full path (a turn taken).
    fn next_a(responder: &Responder) -> Vec<String> {
        let mut request = Message::query();
        request.add_query(Query::query(
            Name::from_str("app.").expect("name"),
            RecordType::A,
        ));
        let local = IpAddr::from([127, 0, 0, 1]);
        let (response, _) = responder.respond(&request, local, None);
        response
            .answers
            .iter()
            .map(|r| format!("answer: {r}"))
            .collect()
    }

    #[test]
    fn a_prediction_takes_no_turn_and_is_the_next_answer() {
        let responder = responder();
        let app = Name::from_str("app.").expect("name");
        let local = IpAddr::from([127, 0, 0, 1]);
        for _ in 0..4 {
            let predicted: Vec<String> = responder
                .predict(&app, RecordType::A, local)
                .into_iter()
                .filter(|l| l.starts_with("answer: "))
                .collect();
            let again: Vec<String> = responder
                .predict(&app, RecordType::A, local)
                .into_iter()
                .filter(|l| l.starts_with("answer: "))
                .collect();
            assert_eq!(predicted, again, "predicting took a turn");
            assert_eq!(predicted.len(), 3);
            assert_eq!(next_a(&responder), predicted);
        }
    }

    #[test]
    fn a_name_not_ours_is_refused_for_a_stranger_and_fails_for_the_host_without_forwarding() {
        let responder = responder();
        let name = Name::from_str("pkg.example.").expect("name");
        let stranger = responder.predict(&name, RecordType::A, IpAddr::from([192, 0, 2, 9]));
        assert_eq!(stranger[0], "response: REFUSED", "{stranger:?}");
        let host = responder.predict(&name, RecordType::A, IpAddr::from([127, 0, 0, 1]));
        assert_eq!(host[0], "response: SERVFAIL", "{host:?}");
    }
}
