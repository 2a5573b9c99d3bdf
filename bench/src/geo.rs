//! Scenario 7: what looking up where visitors are costs. Lookups per second of the producer's
//! own `GeoIp` in this process (one thread, the country database, then a city database), and
//! the producer's throughput, CPU per 1,000 events and peak memory with the lookup off, with
//! the country database and with a city database: three producer processes behind a trusted
//! proxy (this machine) that names 1,000 visitors' public addresses, A/B/C round after round.

use std::time::Instant;

use anyhow::Result;
use producer::geo::GeoIp;
use serde::Serialize;
use settings::GeoIpDatabase;

use crate::load::{address_of, mutation_body};
use crate::procs::{wait_ready, Component};
use crate::versus::{self, Contender, Drive, Load};
use crate::{say, Params};

#[derive(Debug, Default, Serialize)]
pub struct GeoResults {
    /// Country database, then city database (when fetched).
    pub lookups_per_second: Vec<(String, f64)>,
    /// Of the benchmark's addresses, the share the country database places.
    pub placed_share: f64,
    /// Ours is the producer with the country database; the peers are lookup off and city.
    pub producers: versus::Match,
    pub rss_peak_mb: Vec<(String, f64)>,
}

/// The databases, by name: off, the country one, and a city one if `PAGEVIEWS_BENCH_GEOIP_CITY`
/// names it (scripts/bench.sh fetches it; the smoke run has none).
fn databases() -> Vec<(&'static str, GeoIpDatabase)> {
    let mut all = vec![
        ("country database", testkit::country_database()),
        ("lookup off", GeoIpDatabase::Off),
    ];
    if let Some(city) = std::env::var_os("PAGEVIEWS_BENCH_GEOIP_CITY") {
        all.push(("city database", GeoIpDatabase::File(city.into())));
    }
    all
}

pub async fn run(p: &Params, brokers: &str, admin: &str) -> Result<GeoResults> {
    let mut r = GeoResults::default();
    let lookups = p.storage_events * 5;
    for (name, database) in databases() {
        if database == GeoIpDatabase::Off {
            continue;
        }
        let geo = GeoIp::open(&database)?;
        let started = Instant::now();
        let placed = (0..lookups as u64)
            .filter(|n| geo.locate(address_of(*n).into()).country.is_some())
            .count();
        let per_second = lookups as f64 / started.elapsed().as_secs_f64();
        if name == "country database" {
            r.placed_share = placed as f64 / lookups as f64;
        }
        r.lookups_per_second.push((name.to_owned(), per_second));
    }
    let db_url = testkit::fresh_database_on(admin).await?;
    let mut producers = Vec::new();
    for (name, database) in databases() {
        let mut s = testkit::settings(brokers, &db_url, &testkit::unique_prefix());
        s.server.port = testkit::free_port()?;
        s.server.trusted_proxies =
            vec![settings::IpNet::try_from("127.0.0.1".to_owned()).map_err(anyhow::Error::msg)?];
        s.analytics.geoip_database = database;
        let component = Component::spawn("producer", &s)?;
        let base = format!("http://127.0.0.1:{}", s.server.port);
        wait_ready(
            &format!("{base}/readyz"),
            std::time::Duration::from_secs(30),
        )
        .await?;
        producers.push((name, component, base));
    }
    let contenders: Vec<Contender> = producers
        .iter()
        .map(|(name, component, base)| Contender {
            name: (*name).to_owned(),
            query_url: format!("{base}/query"),
            pid: component.pid(),
        })
        .collect();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(p.clients)
        .build()?;
    let drive = Drive {
        clients: p.clients,
        duration: p.versus,
        rounds: p.rounds,
        events_per_request: 1,
    };
    say("7. where visitors are: the producer with the lookup off, a country and a city database");
    let bodies: std::sync::Arc<Vec<String>> =
        std::sync::Arc::new((0..1000).map(|u| mutation_body(u, None)).collect());
    let visitors: Load = std::sync::Arc::new(move |c, n| {
        let visitor = (c * 7919 + n as usize) % bodies.len();
        (visitor, bodies[visitor].clone())
    });
    r.producers = versus::run("7. 1,000 visitors", &contenders, &drive, &http, visitors).await;
    for (name, component, _) in producers {
        r.rss_peak_mb
            .push((name.to_owned(), component.rss_peak_mb()));
        component.stop().await?;
    }
    Ok(r)
}
