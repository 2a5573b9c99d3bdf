//! The Kafka side of the producer: one long-lived rskafka client, the topics created once at
//! start-up, and one `BatchProducer` per partition that aggregates concurrent requests into
//! record batches. A produce is acknowledged only when the broker acknowledged its batch.
//!
//! A failed produce opens a circuit breaker (see `breaker`) and starts one repair: the
//! configured topics that are missing (a broker that lost its data) are created again, so the
//! producer recovers without a restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use event::kafka::{self, within, KafkaError};
use event::partitioner::partition_for;
use event::PageView;
use futures::future::join_all;
use rskafka::client::error::{Error as ClientError, ProtocolError};
use rskafka::client::partition::{Compression, OffsetAt, PartitionClient, UnknownTopicHandling};
use rskafka::client::producer::aggregator::RecordAggregator;
use rskafka::client::producer::{BatchProducer, BatchProducerBuilder};
use rskafka::client::Client;
use rskafka::record::Record;
use settings::KafkaSettings;
use tokio::sync::Semaphore;

use crate::breaker::{Admission, Breaker};
use crate::error::IngestError;
use crate::salts::{self, Salt, SaltBook};

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error(transparent)]
    Kafka(#[from] KafkaError),
    #[error("cannot list the topics on {brokers}: {source}")]
    List {
        brokers: String,
        #[source]
        source: ClientError,
    },
    #[error("cannot create topic {topic}: {source}")]
    CreateTopic {
        topic: String,
        #[source]
        source: ClientError,
    },
    #[error("topic {0} does not exist on the broker after creating it")]
    MissingTopic(String),
    #[error("cannot open the salt topic: {0}")]
    Salts(#[from] salts::SaltError),
    #[error("cannot open partition {topic}/{partition}: {source}")]
    Partition {
        topic: String,
        partition: i32,
        #[source]
        source: ClientError,
    },
}

/// Where an acknowledged event was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub partition: i32,
    pub offset: i64,
}

struct TopicProducers {
    partitions: Vec<BatchProducer<RecordAggregator>>,
    /// The same partitions' clients, asked for their latest offset by the readiness check.
    clients: Vec<Arc<PartitionClient>>,
}

pub struct EventSink {
    client: Arc<Client>,
    kafka: KafkaSettings,
    topics: HashMap<String, TopicProducers>,
    in_flight: Arc<Semaphore>,
    breaker: Breaker,
    /// A repair (re-creating missing topics) is running.
    repairing: Arc<AtomicBool>,
    salts: SaltBook,
}

/// Events between being accepted and answered, as the `pageviews_events_in_flight` gauge.
struct InFlight(f64);

impl InFlight {
    fn count(events: usize) -> Self {
        metrics::gauge!("pageviews_events_in_flight").increment(events as f64);
        InFlight(events as f64)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("pageviews_events_in_flight").decrement(self.0);
    }
}

/// Partition counts by topic name.
type TopicCounts = HashMap<String, i32>;

impl EventSink {
    /// Connects, creates the configured topics that are missing and opens every partition.
    /// Fails with a readable error instead of retrying forever.
    pub async fn connect(kafka: &KafkaSettings, max_in_flight: usize) -> Result<Self, SinkError> {
        // The deadline also bounds the batch flushes that run on after a caller stopped waiting.
        let client = kafka::connect_with(kafka, kafka.produce_timeout()).await?;
        let counts = ensure_topics(&client, kafka).await?;
        let mut topics = HashMap::new();
        for event_type in &kafka.event_types {
            let topic = kafka.topic_for(event_type);
            let count = counts
                .get(&topic)
                .copied()
                .filter(|c| *c > 0)
                .ok_or_else(|| SinkError::MissingTopic(topic.clone()))?;
            let clients = open_partitions(&client, kafka, &topic, count).await?;
            let partitions = clients.iter().map(|pc| batch_producer(kafka, pc)).collect();
            topics.insert(
                event_type.clone(),
                TopicProducers {
                    partitions,
                    clients,
                },
            );
        }
        let salts = SaltBook::open(
            &client,
            &salts::topic(&kafka.topic_prefix),
            kafka.request_timeout(),
        )
        .await?;
        Ok(EventSink {
            salts,
            client: Arc::new(client),
            kafka: kafka.clone(),
            topics,
            in_flight: Arc::new(Semaphore::new(max_in_flight)),
            breaker: Breaker::new(kafka.circuit_breaker()),
            repairing: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The visitor-id salt of `day`, shared with every other producer instance.
    pub async fn salt_for(&self, day: chrono::NaiveDate) -> Result<Salt, IngestError> {
        self.salts.salt_for(day).await.map_err(|e| {
            tracing::warn!(error = %e, "no salt for the visitor id");
            IngestError::KafkaUnavailable {
                reason: "the visitor-id salt could not be read from Kafka".into(),
                ids: Vec::new(),
            }
        })
    }

    /// Keeps today's salt made and older ones deleted; run periodically.
    pub async fn maintain_salts(&self, today: chrono::NaiveDate) {
        self.salts.maintain(today).await;
    }

    /// Whether `event_type` is one this sink produces.
    pub fn accepts(&self, event_type: &str) -> bool {
        self.topics.contains_key(event_type)
    }

    pub fn event_types(&self) -> String {
        let mut types: Vec<&str> = self.topics.keys().map(String::as_str).collect();
        types.sort_unstable();
        types.join(", ")
    }

    /// Produces validated events and waits for the broker's acknowledgement of every one.
    /// Refuses at once when the in-flight bound is reached; gives up after the produce timeout.
    pub async fn send(&self, events: &[PageView]) -> Result<Vec<Delivery>, IngestError> {
        let ids = || events.iter().map(|e| e.id).collect::<Vec<_>>();
        let Admission::Pass(attempt) = self.breaker.admit() else {
            return Err(IngestError::KafkaUnavailable {
                reason: format!(
                    "a produce failed moments ago; requests are refused for up to {:?} before the broker is tried again",
                    self.kafka.circuit_breaker()
                ),
                ids: ids(),
            });
        };
        let permits = u32::try_from(events.len()).map_err(|_| IngestError::Overloaded)?;
        let _permits = self
            .in_flight
            .try_acquire_many(permits)
            .map_err(|_| IngestError::Overloaded)?;
        let _in_flight = InFlight::count(events.len());
        let started = std::time::Instant::now();
        metrics::histogram!("pageviews_produce_batch_events").record(events.len() as f64);

        let mut produces = Vec::with_capacity(events.len());
        for event in events {
            let fields = &event.fields;
            let producers = self.topics.get(&fields.event_type).ok_or_else(|| {
                IngestError::UnknownEventType(fields.event_type.clone(), self.event_types())
            })?;
            // Keyed by visitor: one visitor's events stay in order on one partition.
            let key = record_key(event);
            let partition = partition_for(&key, producers.partitions.len() as i32);
            let record = Record {
                key: Some(key),
                value: Some(event.encode()),
                headers: BTreeMap::new(),
                timestamp: event.received_at,
            };
            let producer = &producers.partitions[partition as usize];
            let timeout = self.kafka.produce_timeout();
            produces.push(async move {
                let offset = tokio::time::timeout(timeout, producer.produce(record))
                    .await
                    .map_err(|_| ProduceFailure::Timeout(timeout))?
                    .map_err(|e| ProduceFailure::Refused(e.to_string()))?;
                Ok::<_, ProduceFailure>(Delivery { partition, offset })
            });
        }
        let results = join_all(produces).await;
        metrics::histogram!("pageviews_produce_seconds").record(started.elapsed().as_secs_f64());
        let mut deliveries = Vec::with_capacity(events.len());
        for result in results {
            match result {
                Ok(d) => deliveries.push(d),
                Err(failure) => {
                    // The details stay in our log; the client learns what it can act on.
                    tracing::warn!(error = ?failure, events = events.len(), "produce failed");
                    attempt.failed();
                    self.repair();
                    return Err(IngestError::KafkaUnavailable {
                        reason: failure.to_string(),
                        ids: ids(),
                    });
                }
            }
        }
        attempt.succeeded();
        Ok(deliveries)
    }

    /// Re-creates missing configured topics in the background, one repair at a time.
    fn repair(&self) {
        if self.repairing.swap(true, Ordering::AcqRel) {
            return;
        }
        let (client, kafka, repairing) = (
            Arc::clone(&self.client),
            self.kafka.clone(),
            Arc::clone(&self.repairing),
        );
        tokio::spawn(async move {
            if let Err(e) = ensure_topics(&client, &kafka).await {
                tracing::warn!(error = %e, "cannot check or re-create the topics");
            }
            repairing.store(false, Ordering::Release);
        });
    }

    /// Whether this instance can acknowledge events now: the breaker is closed and every
    /// partition of every configured topic has a leader that answers. Starts a repair if not.
    pub async fn ready(&self) -> bool {
        if self.breaker.is_open() {
            return false;
        }
        let limit = self.kafka.request_timeout().min(Duration::from_secs(2));
        let checks = self
            .topics
            .values()
            .flat_map(|t| &t.clients)
            .map(|pc| tokio::time::timeout(limit, pc.get_offset(OffsetAt::Latest)));
        let ready = join_all(checks)
            .await
            .iter()
            .all(|answer| matches!(answer, Ok(Ok(_))));
        if !ready {
            self.repair();
        }
        ready
    }

    /// Sends whatever is still lingering in the batch producers, each within the produce timeout.
    pub async fn flush(&self) {
        for producers in self.topics.values() {
            for p in &producers.partitions {
                let timeout = self.kafka.produce_timeout();
                match within(timeout, "flushing at shutdown", p.flush()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "flush at shutdown failed"),
                    Err(e) => tracing::warn!(error = %e, "flush at shutdown failed"),
                }
            }
        }
    }
}

async fn list_topics(client: &Client, kafka: &KafkaSettings) -> Result<TopicCounts, SinkError> {
    let listed = within(
        kafka.request_timeout(),
        "listing topics",
        client.list_topics(),
    )
    .await?
    .map_err(|source| SinkError::List {
        brokers: kafka.brokers.join(","),
        source,
    })?;
    // A topic that already existed keeps its own partition count.
    Ok(listed
        .into_iter()
        .map(|t| (t.name, t.partitions.len() as i32))
        .collect())
}

/// Creates the configured topics that do not exist yet ("already exists" is fine: another
/// producer was first) and returns every topic's partition count once all are listed.
async fn ensure_topics(client: &Client, kafka: &KafkaSettings) -> Result<TopicCounts, SinkError> {
    // The event topics, and the one-partition topic of the visitor-id salts.
    let wanted: Vec<(String, i32)> = kafka
        .event_types
        .iter()
        .map(|t| (kafka.topic_for(t), kafka.partitions))
        .chain([(salts::topic(&kafka.topic_prefix), 1)])
        .collect();
    let counts = list_topics(client, kafka).await?;
    // Asking for an existing topic would make rskafka log an error: create only the missing.
    let missing: Vec<&(String, i32)> = wanted
        .iter()
        .filter(|(t, _)| !counts.contains_key(t))
        .collect();
    if missing.is_empty() {
        return Ok(counts);
    }
    let controller = client
        .controller_client()
        .map_err(|source| SinkError::List {
            brokers: kafka.brokers.join(","),
            source,
        })?;
    for (topic, partitions) in missing {
        let created = within(
            kafka.request_timeout(),
            &format!("creating topic {topic}"),
            controller.create_topic(
                topic,
                *partitions,
                kafka.replication_factor,
                kafka.request_timeout_ms.get().min(i32::MAX as u64) as i32,
            ),
        )
        .await?;
        match created {
            Ok(()) => tracing::info!(topic = %topic, partitions, "created topic"),
            Err(ClientError::ServerError {
                protocol_error: ProtocolError::TopicAlreadyExists,
                ..
            }) => {}
            Err(source) => {
                return Err(SinkError::CreateTopic {
                    topic: topic.clone(),
                    source,
                })
            }
        }
    }
    // Kafka creates a topic asynchronously: its metadata may lag the answer a little.
    let deadline = tokio::time::Instant::now() + kafka.request_timeout();
    loop {
        let counts = list_topics(client, kafka).await?;
        let all_listed = wanted
            .iter()
            .all(|(t, _)| counts.get(t).is_some_and(|c| *c > 0));
        if all_listed || tokio::time::Instant::now() >= deadline {
            return Ok(counts);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The record key: the visitor id, or the client's `userId` for an event without one.
fn record_key(event: &PageView) -> Vec<u8> {
    match event.visit.visitor_id {
        Some(id) => id.to_be_bytes().to_vec(),
        None => event.fields.user_id.as_bytes().to_vec(),
    }
}

/// Why a produce was not acknowledged, as the client is told.
#[derive(Debug, thiserror::Error)]
enum ProduceFailure {
    #[error("no acknowledgement within {0:?}")]
    Timeout(Duration),
    #[error("the broker did not accept the records (the producer's log says why)")]
    Refused(String),
}

/// One client per partition. Each holds a connection of its own to the partition's leader, so
/// partitions never queue behind each other.
async fn open_partitions(
    client: &Client,
    kafka: &KafkaSettings,
    topic: &str,
    count: i32,
) -> Result<Vec<Arc<PartitionClient>>, SinkError> {
    let mut clients = Vec::with_capacity(count as usize);
    for partition in 0..count {
        let pc = within(
            kafka.request_timeout(),
            &format!("opening {topic}/{partition}"),
            client.partition_client(topic.to_owned(), partition, UnknownTopicHandling::Retry),
        )
        .await?
        .map_err(|source| SinkError::Partition {
            topic: topic.to_owned(),
            partition,
            source,
        })?;
        clients.push(Arc::new(pc));
    }
    Ok(clients)
}

fn batch_producer(
    kafka: &KafkaSettings,
    client: &Arc<PartitionClient>,
) -> BatchProducer<RecordAggregator> {
    let compression = match kafka.compression {
        settings::Compression::None => Compression::NoCompression,
        settings::Compression::Gzip => Compression::Gzip,
        settings::Compression::Snappy => Compression::Snappy,
    };
    BatchProducerBuilder::new(Arc::clone(client))
        .with_linger(kafka.linger())
        .with_compression(compression)
        .build(RecordAggregator::new(kafka.max_batch_bytes))
}
