//! The Kafka client set-up both binaries (and the tests) use.

use std::future::Future;
use std::time::Duration;

use rskafka::client::{Client, ClientBuilder};
use rskafka::BackoffConfig;
use settings::KafkaSettings;

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("timed out after {0:?} {1}")]
    Timeout(Duration, String),
    #[error("cannot reach the Kafka brokers {brokers}: {source}")]
    Connect {
        brokers: String,
        #[source]
        source: rskafka::client::error::Error,
    },
}

/// Runs a broker call with a deadline; `what` names it in the error.
pub async fn within<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = T>,
) -> Result<T, KafkaError> {
    tokio::time::timeout(limit, fut)
        .await
        .map_err(|_| KafkaError::Timeout(limit, what.to_owned()))
}

/// A client for `brokers` whose internal retries give up after `deadline`. Every partition
/// client made from it holds a connection of its own to the partition's leader.
pub async fn connect(
    brokers: &[String],
    client_id: &str,
    deadline: Duration,
) -> Result<Client, KafkaError> {
    let backoff = BackoffConfig {
        init_backoff: Duration::from_millis(50),
        max_backoff: Duration::from_millis(500),
        base: 2.0,
        deadline: Some(deadline),
    };
    let list = brokers.join(",");
    within(
        deadline,
        &format!("connecting to {list}"),
        ClientBuilder::new(brokers.to_vec())
            .client_id(client_id.to_owned())
            .backoff_config(backoff)
            .build(),
    )
    .await?
    .map_err(|source| KafkaError::Connect {
        brokers: list,
        source,
    })
}

/// [`connect`] with the settings' brokers and client id; retries stop at `deadline`.
pub async fn connect_with(kafka: &KafkaSettings, deadline: Duration) -> Result<Client, KafkaError> {
    connect(&kafka.brokers, &kafka.client_id, deadline).await
}
