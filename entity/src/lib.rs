//! SeaORM entities of the page-view store: the events, the consumer's stored offsets, the dead
//! letters, and the partition leases that let several consumers share the work.
//!
//! Architecture Invariant: this crate knows nothing of Kafka clients, HTTP or settings; it is the
//! shape of the tables and nothing else. The tables themselves are created by `migration`.

pub mod consumer_member;
pub mod consumer_offset;
pub mod dead_letter;
pub mod kafka_event;
pub mod page_view;
pub mod partition_lease;

pub mod prelude {
    pub use super::consumer_member::Entity as ConsumerMember;
    pub use super::consumer_offset::Entity as ConsumerOffset;
    pub use super::dead_letter::Entity as DeadLetter;
    pub use super::kafka_event::Entity as KafkaEvent;
    pub use super::partition_lease::Entity as PartitionLease;
}
