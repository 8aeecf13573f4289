//! A resource client that misbehaves on request, to test the host's sandbox.
//!
//! The category of the first event passed to `fetch` (or the resource type of
//! the first write passed to `store`) selects the behaviour:
//! `loop` spins forever, `alloc` allocates without bound, `trap` panics,
//! `recurse` recurses until the wasm stack overflows,
//! `http-denied` requests the event's first link and reports the host's
//! answer, `env` reports the `SECRET` environment variable, `echo-headers`
//! reports every header it can see, and `ok` behaves.

use std::hint::black_box;

use sync_plugin_sdk::http::{self, Request};
use sync_plugin_sdk::{
    Endpoint, Event, Failure, Resource, ResourceClient, Stored, Write, WriteOutcome,
};

/// The misbehaving client.
pub struct Hostile;

impl ResourceClient for Hostile {
    fn fetch(_source: &Endpoint, events: &[Event]) -> Vec<Result<Resource, Failure>> {
        let Some(first) = events.first() else {
            return Vec::new();
        };
        match first.category.as_str() {
            "ok" => events
                .iter()
                .map(|e| Ok(resource(e, format!(r#"{{"id":"{}"}}"#, e.id))))
                .collect(),
            "http-denied" => repeat(events, request_first_link(first)),
            "env" => {
                let secret = std::env::var("SECRET").unwrap_or_else(|_| "<unset>".to_string());
                repeat(events, Ok(resource(first, secret)))
            }
            "echo-headers" => repeat(events, echo_headers(first)),
            other => {
                misbehave(other);
                repeat(
                    events,
                    Err(Failure::invalid(format!("unknown behaviour {other}"))),
                )
            }
        }
    }

    fn store(_target: &Endpoint, writes: &[Write]) -> Vec<Result<Stored, Failure>> {
        if let Some(first) = writes.first() {
            misbehave(&first.resource.resource_type);
        }
        writes
            .iter()
            .map(|w| {
                Ok(Stored {
                    resource_type: w.resource.resource_type.clone(),
                    id: w.resource.id.clone(),
                    version: None,
                    outcome: WriteOutcome::Updated,
                })
            })
            .collect()
    }
}

sync_plugin_sdk::export_resource_client!(Hostile);

/// Loops, allocates or traps when `behaviour` asks for it; returns otherwise.
fn misbehave(behaviour: &str) {
    match behaviour {
        "loop" => spin(),
        "alloc" => allocate_forever(),
        "trap" => panic!("the hostile plugin traps on purpose"),
        "recurse" => {
            black_box(recurse(black_box(1)));
        }
        _ => {}
    }
}

fn spin() {
    let mut counter: u64 = 0;
    loop {
        counter = black_box(counter.wrapping_add(1));
    }
}

/// Never returns: each frame holds a buffer, so the wasm stack runs out quickly.
// Endless recursion is the point: this plugin exists to overflow its stack.
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    let frame = black_box([depth as u8; 512]);
    black_box(recurse(black_box(depth + 1))) + u64::from(frame[0])
}

fn allocate_forever() {
    let mut held: Vec<Vec<u8>> = Vec::new();
    loop {
        // Writing every byte makes the pages real, not just reserved.
        let mut chunk = vec![0u8; 1 << 20];
        chunk.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
        held.push(black_box(chunk));
    }
}

fn resource(event: &Event, body: String) -> Resource {
    Resource {
        resource_type: event.resource_type.clone(),
        id: event.resource_id.clone(),
        version: None,
        body,
        deleted: false,
    }
}

fn repeat(events: &[Event], result: Result<Resource, Failure>) -> Vec<Result<Resource, Failure>> {
    events.iter().map(|_| result.clone()).collect()
}

fn first_link(event: &Event) -> Result<&str, Failure> {
    event
        .links
        .first()
        .map(|link| link.href.as_str())
        .ok_or_else(|| Failure::invalid(format!("event {} has no link", event.id)))
}

fn request_first_link(event: &Event) -> Result<Resource, Failure> {
    let url = first_link(event)?;
    match http::get(url, &[]) {
        Ok(response) => Ok(resource(
            event,
            format!(r#"{{"status":{}}}"#, response.status),
        )),
        Err(error) => Err(Failure::invalid(error.describe())),
    }
}

fn echo_headers(event: &Event) -> Result<Resource, Failure> {
    let request = Request::get(first_link(event)?)
        .header("authorization", "plugin-forged")
        .header("x-plugin", "1");
    let mut seen: Vec<(String, String)> = request.headers.clone();
    let response = http::send(request).map_err(|e| Failure::invalid(e.describe()))?;
    seen.extend(response.headers);
    let body = serde_json::to_string(&seen).map_err(|e| Failure::invalid(e.to_string()))?;
    Ok(resource(event, body))
}
