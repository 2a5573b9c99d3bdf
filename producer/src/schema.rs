//! The GraphQL schema, compatible with the tutorial's gqlgen schema (same names, including the
//! snake_case mutation) and extended only with optional fields and a batch mutation.

use std::sync::Arc;

use async_graphql::{
    Context, EmptySubscription, ErrorExtensions, InputObject, Object, Result, Schema, SimpleObject,
    ID,
};
use chrono::{SecondsFormat, Utc};
use event::page_view::{check_text, MAX_EVENT_TYPE};
use event::{PageFields, PageView, Visit};
use uuid::Uuid;

use crate::error::IngestError;
use crate::salts::Salt;
use crate::sink::{Delivery, EventSink};
use crate::visitor::{visitor_id, RequestContext};

pub type IngestSchema = Schema<Query, Mutation, EmptySubscription>;

/// What the resolvers need, shared by every request.
pub struct Ingest {
    pub sink: Arc<EventSink>,
    pub max_batch_size: usize,
    pub clock: Clock,
}

/// Where receive times come from: the system clock, or a test's (visits span hours; a test
/// cannot wait for them).
#[derive(Clone)]
pub struct Clock(Arc<dyn Fn() -> chrono::DateTime<Utc> + Send + Sync>);

impl Clock {
    pub fn system() -> Self {
        Clock(Arc::new(Utc::now))
    }

    pub fn new(now: impl Fn() -> chrono::DateTime<Utc> + Send + Sync + 'static) -> Self {
        Clock(Arc::new(now))
    }

    pub fn now(&self) -> chrono::DateTime<Utc> {
        (self.0)()
    }
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
        register_one(ingest, ctx.data_opt::<RequestContext>(), event)
            .await
            .map_err(|e| e.extend())
    }

    /// Registers up to `server.max_batch_size` events at once; all or none are acknowledged.
    #[graphql(name = "register_kafka_events")]
    async fn register_kafka_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<RegisterKafkaEventInput>,
    ) -> Result<Vec<Event>> {
        let ingest = ctx.data::<Ingest>()?;
        register_many(ingest, ctx.data_opt::<RequestContext>(), events)
            .await
            .map_err(|e| e.extend())
    }
}

// The resolvers' bodies return `IngestError` so that `?` can never lose the error code
// (async-graphql's blanket `From<Display>` would keep only the message).
async fn register_one(
    ingest: &Ingest,
    request: Option<&RequestContext>,
    event: RegisterKafkaEventInput,
) -> Result<Event, IngestError> {
    let stamp = Stamp::now(ingest, request).await?;
    let view = stamp.page_view(&ingest.sink, event)?;
    let delivery = ingest.sink.send(std::slice::from_ref(&view)).await?;
    Ok(Event::from((view, delivery.first().copied())))
}

async fn register_many(
    ingest: &Ingest,
    request: Option<&RequestContext>,
    events: Vec<RegisterKafkaEventInput>,
) -> Result<Vec<Event>, IngestError> {
    if events.len() > ingest.max_batch_size {
        return Err(IngestError::BatchTooLarge {
            got: events.len(),
            max: ingest.max_batch_size,
        });
    }
    let stamp = Stamp::now(ingest, request).await?;
    let views = events
        .into_iter()
        .map(|e| stamp.page_view(&ingest.sink, e))
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

/// What every event of one mutation is stamped with: the receive time, the request's context
/// and the salt of the day.
struct Stamp<'a> {
    received_at: chrono::DateTime<Utc>,
    request: Option<&'a RequestContext>,
    salt: Salt,
}

impl<'a> Stamp<'a> {
    async fn now(
        ingest: &Ingest,
        request: Option<&'a RequestContext>,
    ) -> Result<Self, IngestError> {
        let received_at = ingest.clock.now();
        let salt = ingest.sink.salt_for(received_at.date_naive()).await?;
        Ok(Stamp {
            received_at,
            request,
            salt,
        })
    }

    /// Validates the input and stamps it with an id, the receive time and the visit.
    fn page_view(
        &self,
        sink: &EventSink,
        input: RegisterKafkaEventInput,
    ) -> Result<PageView, IngestError> {
        let mut fields = input.fields;
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
                _ => return Err(IngestError::InvalidId(crate::answers::shortened(&raw, 40))),
            },
            // v7: time-ordered and unique, unlike the tutorial's Unix-second ids.
            None => Uuid::now_v7(),
        };
        if fields.referrer.is_none() {
            // A client that says nothing about the referrer: the request's `Referer` header.
            fields.referrer = self.request.and_then(|r| r.referer.clone());
        }
        fields.validate()?;
        let site = enrich::site::site_of(&fields.url).ok_or_else(|| {
            IngestError::InvalidField(event::page_view::FieldError {
                field: "url",
                reason: "names no host; send the page's host or full URL (example.com or https://example.com/page)".into(),
            })
        })?;
        let user_agent = self.request.and_then(|r| r.user_agent.clone());
        let place = self.request.map(|r| r.place.clone()).unwrap_or_default();
        let visit = Visit {
            visitor_id: Some(visitor_id(
                &self.salt,
                &site,
                self.request.and_then(|r| r.client),
                user_agent.as_deref(),
            )),
            user_agent,
            language: self.request.and_then(|r| r.language.clone()),
            country: place.country,
            region: place.region,
            city: place.city,
        };
        Ok(PageView {
            id,
            fields,
            visit,
            received_at: self.received_at,
            source_id: None,
        })
    }
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
