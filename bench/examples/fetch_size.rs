//! Probe: does the broker respect a fetch's max_bytes?
use rskafka::client::partition::{Compression, UnknownTopicHandling};
use rskafka::client::ClientBuilder;
use rskafka::record::Record;

#[tokio::main]
async fn main() {
    let client = ClientBuilder::new(vec![std::env::var("B").unwrap()])
        .build()
        .await
        .unwrap();
    let topic = format!("size{}", uuid::Uuid::new_v4().simple());
    client
        .controller_client()
        .unwrap()
        .create_topic(&topic, 1, 1, 5000)
        .await
        .unwrap();
    let pc = client
        .partition_client(&topic, 0, UnknownTopicHandling::Retry)
        .await
        .unwrap();
    for _ in 0..50 {
        let recs: Vec<Record> = (0..1000)
            .map(|_| Record {
                key: None,
                value: Some(vec![7; 250]),
                headers: Default::default(),
                timestamp: chrono::Utc::now(),
            })
            .collect();
        pc.produce(recs, Compression::NoCompression).await.unwrap();
    }
    for max in [64 * 1024, 2 * 1024 * 1024, 8 * 1024 * 1024] {
        let (recs, hwm) = pc.fetch_records(0, 1..max, 10).await.unwrap();
        let bytes: usize = recs
            .iter()
            .map(|r| r.record.value.as_ref().map_or(0, Vec::len))
            .sum();
        println!(
            "max_bytes {max}: {} records, {bytes} value bytes (hwm {hwm})",
            recs.len()
        );
    }
}
