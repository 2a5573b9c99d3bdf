//! Ours against the Go peer: the same load generator and the same bodies, contenders
//! alternating A/B round after round on the same broker, and the CPU each process spent per
//! 1,000 events acknowledged.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::load::{closed_loop, post_ok, Stats};
use crate::procs::cpu_seconds;

/// A server under load: its GraphQL endpoint and its process.
pub struct Contender {
    pub name: String,
    pub query_url: String,
    pub pid: u32,
}

/// One contender's figure: the round with its median throughput.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Figure {
    pub name: String,
    pub requests: Stats,
    pub events_per_second: f64,
    pub cpu_seconds_per_1000_events: f64,
}

/// One scenario: ours (the first contender) and the peers.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Match {
    pub scenario: String,
    pub rounds: usize,
    pub ours: Figure,
    pub peers: Vec<Figure>,
}

impl Match {
    /// The peer at its best (most events per second).
    pub fn best_peer(&self) -> Option<&Figure> {
        self.peers
            .iter()
            .max_by(|a, b| a.events_per_second.total_cmp(&b.events_per_second))
    }

    /// Ours over the best peer's events per second.
    pub fn ratio(&self) -> f64 {
        match self.best_peer() {
            Some(best) if best.events_per_second > 0.0 => {
                self.ours.events_per_second / best.events_per_second
            }
            _ => 0.0,
        }
    }
}

/// What client `c` sends as its `n`th request: as which visitor (its user agent), which body.
pub type Load = Arc<dyn Fn(usize, u64) -> (usize, String) + Send + Sync>;

/// How one scenario is driven.
pub struct Drive {
    pub clients: usize,
    pub duration: Duration,
    pub rounds: usize,
    pub events_per_request: usize,
}

pub async fn run(
    scenario: &str,
    contenders: &[Contender],
    drive: &Drive,
    http: &reqwest::Client,
    load: Load,
) -> Match {
    let mut rounds: Vec<Vec<Figure>> = vec![Vec::new(); contenders.len()];
    for _ in 0..drive.rounds {
        for (i, c) in contenders.iter().enumerate() {
            rounds[i].push(one_run(c, drive, http, Arc::clone(&load)).await);
        }
    }
    let mut medians = rounds.into_iter().map(median);
    Match {
        scenario: scenario.to_owned(),
        rounds: drive.rounds,
        ours: medians.next().unwrap_or_default(),
        peers: medians.collect(),
    }
}

async fn one_run(c: &Contender, drive: &Drive, http: &reqwest::Client, load: Load) -> Figure {
    let cpu_before = cpu_seconds(c.pid).unwrap_or(0.0);
    let requests = {
        let (http, url) = (http.clone(), c.query_url.clone());
        closed_loop(drive.clients, drive.duration, move |client, n| {
            let (visitor, body) = load(client, n);
            let (http, url) = (http.clone(), url.clone());
            async move { post_ok(&http, &url, visitor, body).await }
        })
        .await
    };
    let cpu = cpu_seconds(c.pid).unwrap_or(0.0) - cpu_before;
    let events = requests.ok as f64 * drive.events_per_request as f64;
    Figure {
        name: c.name.clone(),
        events_per_second: requests.per_second * drive.events_per_request as f64,
        cpu_seconds_per_1000_events: if events > 0.0 {
            cpu / events * 1000.0
        } else {
            0.0
        },
        requests,
    }
}

/// The round with the median throughput, whole (its latencies belong to it).
fn median(mut figures: Vec<Figure>) -> Figure {
    figures.sort_by(|a, b| a.events_per_second.total_cmp(&b.events_per_second));
    let middle = figures.len() / 2;
    figures.into_iter().nth(middle).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(name: &str, events_per_second: f64) -> Figure {
        Figure {
            name: name.into(),
            events_per_second,
            ..Default::default()
        }
    }

    #[test]
    fn the_median_round_is_kept_whole() {
        let m = median(vec![
            figure("r1", 5.0),
            figure("r2", 1.0),
            figure("r3", 3.0),
        ]);
        assert_eq!(m.name, "r3");
    }

    #[test]
    fn the_ratio_is_against_the_best_peer() {
        let m = Match {
            ours: figure("ours", 30.0),
            peers: vec![
                figure("go 0", 10.0),
                figure("go 1", 20.0),
                figure("go 5", 15.0),
            ],
            ..Default::default()
        };
        assert_eq!(m.best_peer().map(|p| p.name.as_str()), Some("go 1"));
        assert_eq!(m.ratio(), 1.5);
    }
}
