//! Fuzzes the path every request takes: content type, signature, headers, form decoding,
//! nesting check, event parsing (`keelson_webhooks::inspect`).
//!
//! The first input byte picks the shape; the rest is the body. Half the inputs are signed
//! with the fuzz secret so the parsers behind the signature check are reached.
#![no_main]

use keelson_webhooks::{Action, DeliveryHeaders, Host, Limits, Rejection, Secret, inspect, signature};
use libfuzzer_sys::fuzz_target;

const KEY: &[u8] = b"fuzz secret";
const CONTENT_TYPES: [&str; 4] = [
    "application/json",
    "application/x-www-form-urlencoded",
    "application/json; charset=utf-8",
    "text/plain",
];
const EVENTS: [&str; 8] = ["push", "pull_request", "ping", "issues", "", "push ", "Push", "future_event"];

fuzz_target!(|data: &[u8]| {
    let Some((&shape, body)) = data.split_first() else { return };
    let secret = Secret::new(KEY.to_vec()).expect("non-empty");
    let signed = shape & 1 == 0;
    let sig = if signed {
        signature::sign(KEY, body)
    } else {
        // Whatever the input makes of a header: never a valid signature.
        String::from_utf8_lossy(&body[..body.len().min(71)]).into_owned()
    };
    let headers = DeliveryHeaders {
        content_type: Some(CONTENT_TYPES[usize::from(shape >> 1) % 4].as_bytes()),
        signature: Some(sig.as_bytes()),
        event: Some(EVENTS[usize::from(shape >> 3) % 8].as_bytes()),
        delivery: (shape & 0x40 == 0).then_some(b"72d3162e-cc78-11e3-81ab-4c9367dc0958".as_slice()),
        ..DeliveryHeaders::default()
    };
    let limits = Limits::default();
    match inspect(Host::GitHub, &secret, &limits, headers, body) {
        Ok(delivery) => {
            assert!(signed, "an unsigned body was accepted");
            if let Action::Triggers(triggers) = delivery.action {
                for trigger in triggers {
                    assert!(trigger.git_ref.starts_with("refs/"));
                    serde_json::to_string(&trigger).expect("a trigger serializes");
                }
            }
        }
        Err(rejection) => {
            assert!(rejection.status().is_client_error(), "{rejection}: {}", rejection.status());
            if !signed && !matches!(rejection, Rejection::UnsupportedMediaType(_)) {
                assert!(matches!(rejection, Rejection::Signature(_)), "{rejection}");
            }
        }
    }
});
