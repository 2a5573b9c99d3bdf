//! The one table `make bench` prints and writes to bench/RESULTS.md: each figure beside its
//! ceiling or peer from the same run, the ratio and the target.

use std::fmt::Write as _;

use crate::versus::{Figure, Match};
use crate::Results;

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "MISSED"
    }
}

/// A figure of the A/B scenarios: throughput, latency, errors and CPU per 1,000 events.
fn describe(f: &Figure) -> String {
    format!(
        "{}: {:.0} ev/s, p50 {:.1} ms, p99 {:.1} ms, {} errors, {:.3} CPU-s/1k ev",
        f.name,
        f.events_per_second,
        f.requests.p50_ms,
        f.requests.p99_ms,
        f.requests.errors,
        f.cpu_seconds_per_1000_events
    )
}

/// Ours against the best peer (the target), then each peer's run for reference.
fn versus_rows(label: &str, m: &Match) -> Vec<[String; 5]> {
    let best = m.best_peer().map(|b| b.name.as_str()).unwrap_or_default();
    let mut rows = Vec::new();
    for (i, peer) in m.peers.iter().enumerate() {
        let is_best = peer.name == best;
        rows.push([
            if i == 0 {
                label.to_owned()
            } else {
                String::new()
            },
            if i == 0 {
                describe(&m.ours)
            } else {
                String::new()
            },
            format!("{}{}", describe(peer), if is_best { " (best)" } else { "" }),
            format!(
                "{:.2}×",
                ratio(m.ours.events_per_second, peer.events_per_second)
            ),
            if is_best {
                format!("≥ 1.0× the best Go: {}", verdict(m.ratio() >= 1.0))
            } else {
                String::new()
            },
        ]);
    }
    rows
}

/// Scenario 7: the lookup alone, then the producer with it off, with the country database and
/// with a city database.
fn geo_rows(g: &crate::geo::GeoResults) -> Vec<[String; 5]> {
    let lookups: Vec<String> = g
        .lookups_per_second
        .iter()
        .map(|(name, n)| format!("{name} {n:.0}/s"))
        .collect();
    let mut rows = vec![[
        "7. where visitors are".into(),
        format!(
            "IP lookups, one thread: {} ({:.0} % of the addresses placed)",
            lookups.join(", "),
            g.placed_share * 100.0
        ),
        "".into(),
        "".into(),
        "".into(),
    ]];
    let m = &g.producers;
    let off = m.peers.iter().find(|f| f.name == "lookup off");
    let all = std::iter::once(&m.ours).chain(&m.peers);
    for f in all {
        let rss = g
            .rss_peak_mb
            .iter()
            .find(|(name, _)| *name == f.name)
            .map_or(0.0, |(_, mb)| *mb);
        let cost = off.map_or(String::new(), |o| {
            format!(
                "CPU {:+.0} % vs lookup off",
                (ratio(f.cpu_seconds_per_1000_events, o.cpu_seconds_per_1000_events) - 1.0) * 100.0
            )
        });
        rows.push([
            "".into(),
            format!("producer, {}; peak RSS {rss:.1} MB", describe(f)),
            cost,
            "".into(),
            if f.name == "country database" {
                format!("< 100 MB: {}", verdict(rss < 100.0))
            } else {
                "".into()
            },
        ]);
    }
    rows
}

pub fn table(r: &Results) -> String {
    let single = &r.ingest_single;
    let healthz = ratio(single.per_second, r.ceiling_a_healthz.per_second);
    let anchor = ratio(single.per_second, r.anchor_tutorial_style.per_second);
    let storage = ratio(
        r.storage_events_per_second,
        r.ceiling_c_copy_rows_per_second,
    );
    let max_rss = r.rss_peak_mb.values().cloned().fold(0.0, f64::max);
    let mut rows: Vec<[String; 5]> = vec![[
        "scenario".into(),
        "figure".into(),
        "ceiling / anchor".into(),
        "ratio".into(),
        "target".into(),
    ]];
    let (a, b, c) = (r.versus.first(), r.versus.get(1), r.versus.get(2));
    if let Some(m) = a {
        rows.extend(versus_rows("1a. ingest, one visitor", m));
    }
    if let Some(m) = b {
        rows.extend(versus_rows("1b. ingest, single, 1,000 visitors", m));
    }
    rows.push([
        "".into(),
        "".into(),
        format!(
            "A: GET /healthz {:.0} req/s",
            r.ceiling_a_healthz.per_second
        ),
        format!("{:.0} %", healthz * 100.0),
        format!("≥ 50 % of A: {}", verdict(healthz >= 0.5)),
    ]);
    rows.push([
        "".into(),
        "".into(),
        format!(
            "anchor: tutorial-style {:.0} ev/s",
            r.anchor_tutorial_style.per_second
        ),
        format!("{anchor:.1}×"),
        format!("≥ 20×: {}", verdict(anchor >= 20.0)),
    ]);
    rows.push([
        "".into(),
        "".into(),
        format!(
            "B: rskafka sink, no HTTP {:.0} ev/s (p99 {:.1} ms)",
            r.ceiling_b_raw_rskafka.per_second, r.ceiling_b_raw_rskafka.p99_ms
        ),
        format!(
            "{:.0} %",
            ratio(single.per_second, r.ceiling_b_raw_rskafka.per_second) * 100.0
        ),
        "".into(),
    ]);
    let java = &r.ceiling_d_java_producer;
    rows.push([
        "".into(),
        "".into(),
        format!(
            "D: Kafka's Java producer, acks=all, {} B records {:.0} rec/s (p99 {:.0} ms)",
            java.record_bytes, java.per_second, java.p99_ms
        ),
        format!("{:.0} %", ratio(single.per_second, java.per_second) * 100.0),
        "".into(),
    ]);
    if let Some(m) = c {
        rows.extend(versus_rows("2. ingest, batches of 100", m));
    }
    rows.push([
        "3. storage".into(),
        format!(
            "{:.0} ev/s ({:.1} s)",
            r.storage_events_per_second, r.storage_seconds
        ),
        format!("C: COPY {:.0} rows/s", r.ceiling_c_copy_rows_per_second),
        format!("{:.0} %", storage * 100.0),
        format!("≥ 50 % of C: {}", verdict(storage >= 0.5)),
    ]);
    rows.push([
        "4. end to end".into(),
        format!(
            "{:.0} ev/s, POST sent → row committed: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} events, {} errors)",
            r.end_to_end_http.per_second,
            r.end_to_end.p50_ms,
            r.end_to_end.p99_ms,
            r.end_to_end.max_ms,
            r.end_to_end.ok,
            r.end_to_end.errors
        ),
        format!(
            "HTTP answer p50 {:.1} ms, p99 {:.1} ms; Go peer's answer at the same rate p50 {:.1} ms, p99 {:.1} ms",
            r.end_to_end_http.p50_ms,
            r.end_to_end_http.p99_ms,
            r.end_to_end_peer_http.p50_ms,
            r.end_to_end_peer_http.p99_ms
        ),
        "".into(),
        format!("p99 < 5 ms: {}", verdict(r.end_to_end.p99_ms < 5.0)),
    ]);
    for (name, mb) in &r.rss_peak_mb {
        rows.push([
            "5. memory".into(),
            format!("{name}: peak RSS {mb:.1} MB"),
            "".into(),
            "".into(),
            "".into(),
        ]);
    }
    rows.push([
        "".into(),
        "".into(),
        "".into(),
        "".into(),
        format!("each < 100 MB: {}", verdict(max_rss < 100.0)),
    ]);
    rows.extend(geo_rows(&r.geo));
    let d = &r.dashboard;
    rows.push([
        "6. dashboard, 30 days".into(),
        format!(
            "{} queries through the Stats API: p50 {:.1} ms, p95 {:.1} ms (slowest: {})",
            d.queries, d.api_p50_ms, d.api_p95_ms, d.slowest_query
        ),
        format!("anchor: raw events at query time {:.0} ms", d.raw_ms),
        format!("{:.0}×", d.speedup),
        format!(
            "p95 < 100 ms: {}; ≥ 100×: {}; equal answers: {}",
            verdict(d.api_p95_ms < 100.0),
            verdict(d.speedup >= 100.0),
            verdict(d.equal)
        ),
    ]);
    rows.push([
        "".into(),
        format!(
            "{} events over {} days: COPY {:.0} s, rebuild {:.0} s ({:.0} ev/s) into {} visits",
            d.events,
            d.days,
            d.seed_seconds,
            d.rebuild_seconds,
            d.rebuild_events_per_second,
            d.visits
        ),
        "".into(),
        "".into(),
        "".into(),
    ]);
    for f in &d.filtered {
        rows.push([
            "6. dashboard, filtered".into(),
            format!(
                "{} queries, each filtered by {}: p50 {:.1} ms, p95 {:.1} ms",
                d.queries, f.filters, f.p50_ms, f.p95_ms
            ),
            format!("anchor: raw events at query time {:.0} ms", f.raw_ms),
            format!("{:.0}×", f.raw_ms / f.p95_ms.max(0.001)),
            format!(
                "p95 < 100 ms: {}; equal answers: {}",
                verdict(f.p95_ms < 100.0),
                verdict(f.equal)
            ),
        ]);
    }
    rows.push([
        "6. storage footprint".into(),
        format!(
            "kafka_events {:.0} bytes per event, visits {:.0} bytes per visit, rollups {:.0} bytes per event (tables and indexes)",
            d.bytes_per_event, d.bytes_per_visit, d.rollup_bytes_per_event
        ),
        "".into(),
        "".into(),
        format!(
            "≤ 200 bytes per event: {}",
            verdict(d.bytes_per_event <= 200.0)
        ),
    ]);
    let g = &d.goals;
    let p95: Vec<String> = g
        .p95_ms
        .iter()
        .map(|(name, ms)| format!("{name} {ms:.1} ms"))
        .collect();
    let slowest = g.p95_ms.iter().map(|(_, ms)| *ms).fold(0.0, f64::max);
    rows.push([
        "6. goals, 30 days".into(),
        format!("p95 through the Stats API: {}", p95.join(", ")),
        format!(
            "anchor: raw events at query time {:.0} ms (all four)",
            g.raw_ms
        ),
        "".into(),
        format!(
            "each p95 < 100 ms: {}; equal answers: {}",
            verdict(slowest < 100.0 && !g.p95_ms.is_empty()),
            verdict(g.equal)
        ),
    ]);
    rows.push([
        "".into(),
        format!(
            "{} custom events; {} goals created, each backfilled over every stored event: {:.1} s in all, {:.1} s the slowest",
            g.custom_events, g.goals, g.backfill_seconds, g.slowest_backfill_seconds
        ),
        "".into(),
        "".into(),
        "".into(),
    ]);
    let widths: Vec<usize> = (0..5)
        .map(|c| {
            rows.iter()
                .map(|row| row[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for (i, row) in rows.iter().enumerate() {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}", w = *w))
            .collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
        if i == 0 {
            let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
            let _ = writeln!(out, "|-{}-|", rule.join("-|-"));
        }
    }
    out
}
