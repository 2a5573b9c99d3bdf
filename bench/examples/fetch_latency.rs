//! Probe: how long after the produce ack does a long-polling fetch deliver a record, with a
//! steady stream of records (one partition's share of the end-to-end scenario)?
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() {
    let brokers = std::env::var("B").unwrap();
    let wait: i32 = std::env::var("W").unwrap_or("50".into()).parse().unwrap();
    let client = ClientBuilder::new(vec![brokers.clone()])
        .build()
        .await
        .unwrap();
    let topic = format!("lat{}", uuid::Uuid::new_v4().simple());
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5000)
        .await
        .unwrap();
    let consumer = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let pclient = ClientBuilder::new(vec![brokers]).build().await.unwrap();
    let producer = pclient
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    let acks: Arc<Mutex<HashMap<i64, Instant>>> = Arc::default();
    let a2 = Arc::clone(&acks);
    tokio::spawn(async move {
        for _ in 0..1000 {
            let rec = Record {
                key: None,
                value: Some(vec![1; 10]),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            };
            let offs = producer
                .produce(vec![rec], Compression::NoCompression)
                .await
                .unwrap();
            a2.lock().unwrap().insert(offs[0], Instant::now());
            tokio::time::sleep(Duration::from_millis(4)).await;
        }
    });
    let mut next = 0;
    let mut lat = Vec::new();
    let mut fetch_times = Vec::new();
    while next < 1000 {
        let t = Instant::now();
        let (recs, _hwm) = consumer
            .fetch_records(next, 1..1_000_000, wait)
            .await
            .unwrap();
        fetch_times.push(t.elapsed());
        let now = Instant::now();
        for r in recs {
            if r.offset >= next {
                next = r.offset + 1;
                if let Some(a) = acks.lock().unwrap().get(&r.offset) {
                    lat.push(now.saturating_duration_since(*a));
                }
            }
        }
    }
    lat.sort();
    fetch_times.sort();
    let p = |v: &Vec<Duration>, q: f64| v[((v.len() - 1) as f64 * q) as usize];
    println!(
        "W={wait}: delivery p50 {:?} p99 {:?}; fetch duration p50 {:?} p99 {:?}; {} fetches",
        p(&lat, 0.5),
        p(&lat, 0.99),
        p(&fetch_times, 0.5),
        p(&fetch_times, 0.99),
        fetch_times.len()
    );
}
