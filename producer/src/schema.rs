//! The GraphQL schema, compatible with the tutorial's gqlgen schema (same names, including the
//! snake_case mutation) and extended only with optional fields and a batch mutation.

use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, ErrorExtensions, InputObject, Object, Result, Schema, SimpleObject,
    ID,
};
use chrono::{SecondsFormat, Utc};
use event::page_view::{check_text, MAX_EVENT_TYPE};
use event::{PageFields, PageView};
use uuid::Uuid;

use crate::error::IngestError;
use crate::sink::{Delivery, EventSink};

pub type IngestSchema = Schema<Query, Mutation, EmptySubscription>;

/// What the resolvers need, shared by every request.
pub struct Ingest {
    pub sink: Arc<EventSink>,
    pub max_batch_size: usize,
}

/// An acknowledged event: the client's fields as stored, and where Kafka put it.
#[derive(SimpleObject)]
pub struct Event {
    pub id: ID,
    #[graphql(flatten)]
    pub fields: PageFields,
    /// When the server received the event (RFC 3339, UTC).
    pub received_at: String,
    /// The Kafka partition that acknowledged the event.
    pub partition: Option<i32>,
    /// The event's offset in that partition.
    pub offset: Option<i64>,
}

#[derive(SimpleObject)]
pub struct PingResponse {
    pub message: String,
}

/// The tutorial's input: the page view's fields, and an optional idempotency key.
#[derive(InputObject)]
#[graphql(name = "RegisterKafkaEventInput")]
pub struct RegisterKafkaEventInput {
    #[graphql(flatten)]
    pub fields: PageFields,
    /// Optional idempotency key (a UUID): sending the same id again never stores a second event.
    pub id: Option<String>,
}

pub struct Query;

#[Object]
impl Query {
    async fn ping(&self) -> PingResponse {
        PingResponse {
            message: "pong".into(),
        }
    }
}

pub struct Mutation;

#[Object]
impl Mutation {
    /// Registers one event; answers once the broker acknowledged it.
    #[graphql(name = "register_kafka_event")]
    async fn register_kafka_event(
        &self,
        ctx: &Context<'_>,
        event: RegisterKafkaEventInput,
    ) -> Result<Event> {
        let ingest = ctx.data::<Ingest>()?;
        register_one(ingest, event).await.map_err(|e| e.extend())
    }

    /// Registers up to `server.max_batch_size` events at once; all or none are acknowledged.
    #[graphql(name = "register_kafka_events")]
    async fn register_kafka_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<RegisterKafkaEventInput>,
    ) -> Result<Vec<Event>> {
        let ingest = ctx.data::<Ingest>()?;
        register_many(ingest, events).await.map_err(|e| e.extend())
    }
}

// The resolvers' bodies return `IngestError` so that `?` can never lose the error code
// (async-graphql's blanket `From<Display>` would keep only the message).
async fn register_one(
    ingest: &Ingest,
    event: RegisterKafkaEventInput,
) -> Result<Event, IngestError> {
    let view = to_page_view(&ingest.sink, event)?;
    let delivery = ingest.sink.send(std::slice::from_ref(&view)).await?;
    Ok(Event::from((view, delivery.first().copied())))
}

async fn register_many(
    ingest: &Ingest,
    events: Vec<RegisterKafkaEventInput>,
) -> Result<Vec<Event>, IngestError> {
    if events.len() > ingest.max_batch_size {
        return Err(IngestError::BatchTooLarge {
            got: events.len(),
            max: ingest.max_batch_size,
        });
    }
    let views = events
        .into_iter()
        .map(|e| to_page_view(&ingest.sink, e))
        .collect::<Result<Vec<_>, _>>()?;
    let mut ids = std::collections::HashSet::with_capacity(views.len());
    if let Some(repeated) = views.iter().find(|v| !ids.insert(v.id)) {
        return Err(IngestError::RepeatedId(repeated.id));
    }
    let deliveries = ingest.sink.send(&views).await?;
    Ok(views
        .into_iter()
        .zip(deliveries)
        .map(|(v, d)| Event::from((v, Some(d))))
        .collect())
}

pub fn build_schema(ingest: Ingest, settings: &settings::ServerSettings) -> IngestSchema {
    let builder = Schema::build(Query, Mutation, EmptySubscription)
        .data(ingest)
        .limit_depth(settings.max_depth.get())
        .limit_complexity(settings.max_complexity.get());
    if settings.introspection {
        builder.finish()
    } else {
        builder.disable_introspection().finish()
    }
}

/// Validates the input and stamps it with an id and the receive time.
fn to_page_view(sink: &EventSink, input: RegisterKafkaEventInput) -> Result<PageView, IngestError> {
    let fields = input.fields;
    check_text("eventType", &fields.event_type, MAX_EVENT_TYPE)?;
    if !sink.accepts(&fields.event_type) {
        return Err(IngestError::UnknownEventType(
            fields.event_type,
            sink.event_types(),
        ));
    }
    let id = match input.id {
        Some(raw) => match Uuid::parse_str(&raw) {
            // The nil UUID is what an uninitialised id looks like: every such client would
            // share one event.
            Ok(id) if !id.is_nil() => id,
            // A UUID has 36 characters: a longer echo only helps to blow up the answer.
            _ => return Err(IngestError::InvalidId(crate::shortened(&raw, 40))),
        },
        // v7: time-ordered and unique, unlike the tutorial's Unix-second ids.
        None => Uuid::now_v7(),
    };
    fields.validate()?;
    Ok(PageView {
        id,
        fields,
        received_at: Utc::now(),
    })
}

impl From<(PageView, Option<Delivery>)> for Event {
    fn from((view, delivery): (PageView, Option<Delivery>)) -> Self {
        Event {
            id: ID(view.id.to_string()),
            fields: view.fields,
            received_at: view
                .received_at
                .to_rfc3339_opts(SecondsFormat::Micros, true),
            partition: delivery.map(|d| d.partition),
            offset: delivery.map(|d| d.offset),
        }
    }
}
