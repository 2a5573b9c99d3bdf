//! The page view on the wire and the Kafka client set-up, shared by the producer and the
//! consumer without the database.
//!
//! - `page_view`: the event's JSON form (the record value) and the rules every field follows.
//!   Its client-given fields are declared once, in `PageFields`; the producer's GraphQL types
//!   are derived from that struct (feature `graphql`), and the consumer stores it by column name.
//! - `kafka`: the one way to build an rskafka client (a backoff with a deadline: rskafka's
//!   default retries forever) and the one timeout wrapper every broker call goes through.
//! - `partitioner`: Kafka's murmur2 partition choice.
//!
//! Architecture Invariant: knows nothing of PostgreSQL, SeaORM or HTTP.

pub mod kafka;
pub mod page_view;
pub mod partitioner;

pub use page_view::{PageFields, PageView, Property, Visit};
