//! The Stats GraphQL schema: `stats`, `sites`, `currentVisitors`, and the `currentVisitors`
//! subscription.

use std::time::Duration;

use async_graphql::{
    Context, EmptyMutation, ErrorExtensions, Object, Schema, SimpleObject, Subscription,
};
use chrono::Utc;
use futures::Stream;
use sea_orm::DatabaseConnection;
use settings::{AnalyticsSettings, DashboardSettings};

use analytics::{Better, Dimension, Metric, Unit};

use crate::engine::{self, Engine};
use crate::stats::{self, Checked, QueryError, StatsQuery, StatsRow};

pub type StatsSchema = Schema<QueryRoot, EmptyMutation, SubscriptionRoot>;

/// What resolvers share.
pub struct Reader {
    pub db: DatabaseConnection,
    pub analytics: AnalyticsSettings,
    pub limits: DashboardSettings,
}

impl Reader {
    /// The rows of a checked query, compared with the previous period when asked.
    pub async fn run(&self, q: &Checked, force: Option<Engine>) -> async_graphql::Result<Answer> {
        let (engine, groups) = engine::groups(&self.db, q, force).await.map_err(database)?;
        let mut rows = stats::rows(q, groups);
        if q.compare.is_some() {
            let previous = q.previous_period();
            let (_, before) = engine::groups(&self.db, &previous, Some(engine))
                .await
                .map_err(database)?;
            stats::attach_comparison(q, &mut rows, before);
        }
        Ok(Answer {
            results: rows.into_iter().map(|(_, row)| row).collect(),
            meta: Meta {
                site: q.site.clone(),
                from: q.from.to_string(),
                to: q.to.to_string(),
                time_zone: self.analytics.time_zone_of(&q.site).name().to_owned(),
                engine,
                compared_from: q.compare.map(|_| q.previous_period().from.to_string()),
                compared_to: q.compare.map(|_| q.previous_period().to.to_string()),
            },
        })
    }

    /// Checks a query against the limits and the known sites.
    pub async fn check(&self, q: &StatsQuery) -> async_graphql::Result<Checked> {
        let checked = Checked::new(q, &self.limits).map_err(refused)?;
        if !engine::site_exists(&self.db, &checked.site)
            .await
            .map_err(database)?
        {
            return Err(refused(QueryError::UnknownSite(checked.site)));
        }
        Ok(checked)
    }
}

pub fn refused(e: QueryError) -> async_graphql::Error {
    let code = e.code();
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| ext.set("code", code))
}

fn database(e: sea_orm::DbErr) -> async_graphql::Error {
    tracing::error!(error = %e, "stats query failed");
    async_graphql::Error::new("the database did not answer; try again")
        .extend_with(|_, ext| ext.set("code", "DATABASE_UNAVAILABLE"))
}

#[derive(SimpleObject)]
pub struct Answer {
    pub results: Vec<StatsRow>,
    pub meta: Meta,
}

#[derive(SimpleObject)]
pub struct Meta {
    pub site: String,
    pub from: String,
    pub to: String,
    /// The zone the site's days are counted in.
    pub time_zone: String,
    /// Which tables answered: the rollups, or the visits aggregated at query time.
    pub engine: Engine,
    pub compared_from: Option<String>,
    pub compared_to: Option<String>,
}

/// A dimension a query can name, as the registry declares it.
#[derive(SimpleObject)]
pub struct DimensionInfo {
    pub dimension: Dimension,
    /// The stored name: the CSV column header.
    pub name: &'static str,
    pub label: &'static str,
    /// A time bucket (a series' x axis) rather than a breakdown.
    pub is_time: bool,
}

/// A metric a query can ask for, as the registry declares it.
#[derive(SimpleObject)]
pub struct MetricInfo {
    pub metric: Metric,
    /// The CSV column header.
    pub name: &'static str,
    pub label: &'static str,
    pub unit: Unit,
    /// Which way a change is good news.
    pub better: Better,
}

#[derive(SimpleObject)]
pub struct Site {
    pub name: String,
    pub time_zone: String,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Metrics of a site over local dates, broken down by dimensions, filtered, ordered.
    /// Each one costs 50 of `dashboard.max_complexity` (500): aliases cannot pack a hundred
    /// queries into one request.
    #[graphql(complexity = "50 + child_complexity")]
    async fn stats(&self, ctx: &Context<'_>, query: StatsQuery) -> async_graphql::Result<Answer> {
        let reader = ctx.data::<Reader>()?;
        let checked = reader.check(&query).await?;
        reader.run(&checked, None).await
    }

    /// The sites that have page views.
    async fn sites(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Site>> {
        let reader = ctx.data::<Reader>()?;
        let names = engine::sites(&reader.db).await.map_err(database)?;
        Ok(names
            .into_iter()
            .map(|name| Site {
                time_zone: reader.analytics.time_zone_of(&name).name().to_owned(),
                name,
            })
            .collect())
    }

    /// Every dimension, in the order the dashboard shows them.
    async fn dimensions(&self) -> Vec<DimensionInfo> {
        Dimension::ALL
            .iter()
            .map(|&dimension| DimensionInfo {
                dimension,
                name: dimension.name(),
                label: dimension.label(),
                is_time: dimension.is_time(),
            })
            .collect()
    }

    /// Every metric, in the order the dashboard shows them.
    async fn metrics(&self) -> Vec<MetricInfo> {
        Metric::ALL
            .iter()
            .map(|&metric| {
                let spec = metric.spec();
                MetricInfo {
                    metric,
                    name: spec.name,
                    label: spec.label,
                    unit: spec.unit,
                    better: spec.better,
                }
            })
            .collect()
    }

    /// Visitors seen within the last `dashboard.realtime_window_s` seconds (5 minutes).
    async fn current_visitors(
        &self,
        ctx: &Context<'_>,
        site: String,
    ) -> async_graphql::Result<i64> {
        current(ctx.data::<Reader>()?, &site).await
    }
}

async fn current(reader: &Reader, site: &str) -> async_graphql::Result<i64> {
    let site = site.trim().to_ascii_lowercase();
    let today = Utc::now()
        .with_timezone(&reader.analytics.time_zone_of(&site))
        .date_naive();
    engine::current_visitors(
        &reader.db,
        &site,
        today,
        reader.limits.realtime_window_s.get(),
    )
    .await
    .map_err(database)
}

pub struct SubscriptionRoot;

#[Subscription]
impl SubscriptionRoot {
    /// The current visitors of a site, now and then every `dashboard.realtime_push_ms`.
    async fn current_visitors<'ctx>(
        &self,
        ctx: &Context<'ctx>,
        site: String,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<i64>> + 'ctx> {
        let reader = ctx.data::<Reader>()?;
        let every = reader.limits.realtime_push();
        Ok(futures::stream::unfold(true, move |first| {
            let site = site.clone();
            async move {
                if !first {
                    tokio::time::sleep(every.max(Duration::from_millis(100))).await;
                }
                Some((current(reader, &site).await, false))
            }
        }))
    }
}

pub fn build(reader: Reader) -> StatsSchema {
    let (depth, complexity) = (
        reader.limits.max_depth.get(),
        reader.limits.max_complexity.get(),
    );
    Schema::build(QueryRoot, EmptyMutation, SubscriptionRoot)
        .data(reader)
        .limit_depth(depth)
        .limit_complexity(complexity)
        .finish()
}
