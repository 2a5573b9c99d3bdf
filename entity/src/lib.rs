//! SeaORM entities of the page-view store: the events, the consumer's stored offsets and the
//! dead letters. The read side's rows (visits, rollups) are shaped by the `analytics` model. The lease tables (`partition_leases`, `consumer_members`) have no entity: the
//! consumer's `leases.rs` works on them with SQL timed by the database's `now()`, which an entity
//! would not express.
//!
//! Architecture Invariant: this crate knows nothing of Kafka clients, HTTP or settings; it is the
//! shape of the tables and nothing else. The tables themselves are created by `migration`.

pub mod consumer_offset;
pub mod dead_letter;
pub mod kafka_event;

pub mod prelude {
    pub use super::consumer_offset::Entity as ConsumerOffset;
    pub use super::dead_letter::Entity as DeadLetter;
    pub use super::kafka_event::Entity as KafkaEvent;
}
