//! The load generator: closed-loop keep-alive HTTP clients, and latency statistics. The same
//! client drives the scenario and its ceiling, so its own cost cancels out of the ratio.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    pub ok: u64,
    pub errors: u64,
    pub seconds: f64,
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

pub fn stats(ok: u64, errors: u64, elapsed: Duration, mut latencies: Vec<Duration>) -> Stats {
    latencies.sort_unstable();
    let pick = |q: f64| {
        if latencies.is_empty() {
            0.0
        } else {
            let i = ((latencies.len() as f64 - 1.0) * q).round() as usize;
            latencies[i].as_secs_f64() * 1000.0
        }
    };
    Stats {
        ok,
        errors,
        seconds: elapsed.as_secs_f64(),
        per_second: ok as f64 / elapsed.as_secs_f64().max(1e-9),
        p50_ms: pick(0.50),
        p99_ms: pick(0.99),
        max_ms: pick(1.0),
    }
}

/// Runs `clients` loops for `duration`, each calling `request(client_index, n)` back to back.
/// A request returns Ok(true) when it succeeded.
pub async fn closed_loop<F, Fut>(clients: usize, duration: Duration, request: F) -> Stats
where
    F: Fn(usize, u64) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let request = Arc::new(request);
    let errors = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client in 0..clients {
        let request = Arc::clone(&request);
        let errors = Arc::clone(&errors);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut n = 0u64;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                if request(client, n).await {
                    latencies.push(t0.elapsed());
                } else {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
                n += 1;
            }
            latencies
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        if let Ok(mut l) = task.await {
            latencies.append(&mut l);
        }
    }
    let elapsed = started.elapsed();
    stats(
        latencies.len() as u64,
        errors.load(Ordering::Relaxed),
        elapsed,
        latencies,
    )
}

/// POSTs `body` as the browser of `visitor` (a user agent of its own, so visitors spread over
/// the partitions as real traffic does) and says whether it came back 200 without GraphQL
/// errors.
pub async fn post_ok(http: &reqwest::Client, url: &str, visitor: usize, body: String) -> bool {
    match http
        .post(url)
        .header("content-type", "application/json")
        .header(
            "user-agent",
            format!("Mozilla/5.0 (bench visitor {visitor})"),
        )
        // Read only by a producer that trusts this machine as its proxy (scenario 7).
        .header("x-forwarded-for", address_of(visitor as u64).to_string())
        .body(body)
        .send()
        .await
    {
        Ok(r) if r.status().is_success() => match r.bytes().await {
            // A substring check keeps the client cheap; an error answer always has this key.
            Ok(b) => !b.windows(9).any(|w| w == b"\"errors\":"),
            Err(_) => false,
        },
        _ => false,
    }
}

/// A public IPv4 address for visitor `n`: the first octet from a list of ones the regional
/// registries assign, the others spread by a multiplicative hash.
pub fn address_of(n: u64) -> std::net::Ipv4Addr {
    const FIRST: [u8; 16] = [
        8, 23, 31, 45, 62, 81, 89, 104, 142, 151, 176, 185, 193, 200, 212, 217,
    ];
    let mixed = (n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as u32;
    let [_, b, c, d] = mixed.to_be_bytes();
    std::net::Ipv4Addr::new(FIRST[(n % 16) as usize], b, c, d)
}

/// The README's mutation as a frontend sends it: the same query text every time, the values in
/// `variables` (and a client-chosen id when given).
pub fn mutation_body(user: usize, id: Option<uuid::Uuid>) -> String {
    let id = id.map(|id| format!(r#","id":"{id}""#)).unwrap_or_default();
    format!(
        r#"{{"query":"mutation($e: RegisterKafkaEventInput!) {{ register_kafka_event(event: $e) {{ id eventType }} }}","variables":{{"e":{{"eventType":"PAGE_VIEW","userId":"user_{user}","path":"/test","search":"?q=foo","title":"Kafka Demo","url":"kafka.demo.com"{id}}}}}}}"#
    )
}

/// One batch mutation carrying `n` events, as a frontend sends it: the same query text every
/// time, the events in `variables`.
pub fn batch_body(first_user: usize, n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"eventType":"PAGE_VIEW","userId":"user_{}","path":"/b","search":"","title":"Batch","url":"kafka.demo.com"}}"#,
                first_user + i
            )
        })
        .collect();
    format!(
        r#"{{"query":"mutation($events: [RegisterKafkaEventInput!]!) {{ register_kafka_events(events: $events) {{ id }} }}","variables":{{"events":[{}]}}}}"#,
        events.join(",")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_sorted_latencies() {
        let l = (1..=100).map(Duration::from_millis).collect();
        let s = stats(100, 0, Duration::from_secs(1), l);
        assert_eq!(s.p50_ms.round(), 51.0);
        assert_eq!(s.p99_ms.round(), 99.0);
        assert_eq!(s.max_ms.round(), 100.0);
        assert_eq!(s.per_second.round(), 100.0);
    }

    #[test]
    fn the_bodies_are_json() {
        let one: serde_json::Value = serde_json::from_str(&mutation_body(3, None)).unwrap();
        assert_eq!(one["variables"]["e"]["userId"], "user_3");
        let id = uuid::Uuid::nil();
        let with_id: serde_json::Value = serde_json::from_str(&mutation_body(3, Some(id))).unwrap();
        assert_eq!(with_id["variables"]["e"]["id"], id.to_string());
        let batch: serde_json::Value = serde_json::from_str(&batch_body(0, 3)).unwrap();
        assert_eq!(
            batch["variables"]["events"].as_array().map(Vec::len),
            Some(3)
        );
        assert_eq!(batch["variables"]["events"][2]["userId"], "user_2");
    }
}
