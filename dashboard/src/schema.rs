//! The Stats GraphQL schema: `stats`, `funnel`, `goals`, `sites`, `currentVisitors`, `viewer`,
//! the `currentVisitors` subscription, and, with an admin token, `tokens`, `sharedLinks` and the
//! mutations of goals, sites, tokens and shared links.

use std::time::Duration;

use async_graphql::{Context, ErrorExtensions, Object, Schema, SimpleObject, Subscription};
use chrono::Utc;
use futures::Stream;
use sea_orm::DatabaseConnection;
use settings::{AnalyticsSettings, DashboardSettings};

use analytics::{Better, Dimension, Metric, Unit};

use crate::access::{require_admin, require_site, Role};
use crate::engine::{self, Engine};
use crate::funnel::{Funnel, FunnelQuery};
use crate::goals::{self, GoalChangeError, GoalInfo, GoalInput};
use crate::links::{self, SharedLink};
use crate::sites::{self, SiteError, SiteInfo};
use crate::stats::{self, Checked, QueryError, StatsQuery, StatsRow};
use crate::tokens::{self, CreatedToken, TokenInfo, TokenScope};

pub type StatsSchema = Schema<QueryRoot, MutationRoot, SubscriptionRoot>;

/// What resolvers share.
pub struct Reader {
    /// Where queries read: `dashboard.database_url` (a replica), or else `database.url`.
    pub db: DatabaseConnection,
    /// `database.url`: where changes go, and what an admin reads back at once.
    pub primary: DatabaseConnection,
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
                time_zone: q.zone.name().to_owned(),
                counting: q.counting,
                engine,
                compared_from: q.compare.map(|_| q.previous_period().from.to_string()),
                compared_to: q.compare.map(|_| q.previous_period().to.to_string()),
            },
        })
    }

    /// Checks a query against the limits, the known sites, the site's goals and the days the
    /// role shows.
    pub async fn check(&self, q: &StatsQuery, role: &Role) -> async_graphql::Result<Checked> {
        // The limits first, with no database, then the site (as `Checked` names it); a period
        // ends on the site's today in its registered zone.
        let today = |zone: chrono_tz::Tz| chrono::Utc::now().with_timezone(&zone).date_naive();
        let name = q.site.trim().to_ascii_lowercase();
        let settings_zone = self.analytics.time_zone_of(&name);
        let mut checked = Checked::new(q, &self.limits, today(settings_zone)).map_err(refused)?;
        let site = self.registered(&checked.site).await?;
        if site.zone != settings_zone {
            checked = Checked::new(q, &self.limits, today(site.zone)).map_err(refused)?;
        }
        (checked.zone, checked.counting) = (site.zone, site.counting);
        role.bound(&mut checked).map_err(refused)?;
        let named: Vec<String> = checked
            .filters
            .iter()
            .filter(|f| {
                f.dimension == analytics::Dimension::Goal && f.op != stats::FilterOp::Contains
            })
            .flat_map(|f| f.values.iter().map(|v| v.trim().to_owned()))
            .collect();
        self.goal_ids(&checked.site, &named).await?;
        Ok(checked)
    }

    /// The registered site of that name, or `UNKNOWN_SITE`.
    async fn registered(&self, site: &str) -> async_graphql::Result<SiteInfo> {
        self.registered_in(&self.db, site).await
    }

    /// The domain of a registered site as the primary has it (a change to a site just added
    /// must find it), or `UNKNOWN_SITE`.
    async fn site_to_change(&self, site: &str) -> async_graphql::Result<String> {
        let site = site.trim().to_ascii_lowercase();
        Ok(self.registered_in(&self.primary, &site).await?.domain)
    }

    async fn registered_in(
        &self,
        db: &DatabaseConnection,
        site: &str,
    ) -> async_graphql::Result<SiteInfo> {
        match sites::find(db, &self.analytics, site)
            .await
            .map_err(database)?
        {
            Some(found) => Ok(found),
            None => Err(refused(QueryError::UnknownSite(site.to_owned()))),
        }
    }

    /// The ids of the named goals, or `UNKNOWN_GOAL` naming the first the site lacks.
    async fn goal_ids(&self, site: &str, names: &[String]) -> async_graphql::Result<Vec<i32>> {
        match goals::ids(&self.db, site, names).await.map_err(database)? {
            Ok(ids) => Ok(ids),
            Err(name) => Err(refused(QueryError::UnknownGoal(name))),
        }
    }

    /// A funnel's counts.
    pub async fn funnel(&self, q: &FunnelQuery, role: &Role) -> async_graphql::Result<Funnel> {
        let steps = analytics::goal::FUNNEL_STEPS;
        let names: Vec<String> = q.steps.iter().map(|s| s.trim().to_owned()).collect();
        if !steps.contains(&names.len()) {
            return Err(refused(QueryError::Events(format!(
                "steps: a funnel has {} to {} goals, not {}",
                steps.start(),
                steps.end(),
                names.len()
            ))));
        }
        if names
            .iter()
            .enumerate()
            .any(|(i, n)| names[..i].contains(n))
        {
            return Err(refused(QueryError::Events(
                "steps: a goal is named twice".into(),
            )));
        }
        let stats = StatsQuery {
            site: q.site.clone(),
            date_range: q.date_range.clone(),
            metrics: vec![analytics::Metric::Visitors],
            dimensions: Vec::new(),
            property: None,
            filters: q.filters.clone(),
            order_by: Vec::new(),
            limit: None,
            offset: 0,
            compare: None,
        };
        let checked = self.check(&stats, role).await?;
        let ids = self.goal_ids(&checked.site, &names).await?;
        let mut values: Vec<sea_orm::Value> = vec![
            checked.site.clone().into(),
            checked.from.into(),
            checked.to.into(),
        ];
        values.extend(ids.into_iter().map(sea_orm::Value::from));
        let entering =
            (!checked.filters.is_empty()).then(|| engine::visit_filters(&checked, &mut values));
        crate::funnel::run(&self.db, &names, values, entering.as_deref())
            .await
            .map_err(database)
    }
}

pub fn refused(e: QueryError) -> async_graphql::Error {
    let code = e.code();
    async_graphql::Error::new(e.to_string()).extend_with(|_, ext| ext.set("code", code))
}

fn database(e: sea_orm::DbErr) -> async_graphql::Error {
    if let sea_orm::DbErr::Custom(message) = &e {
        if let Some(why) = message.strip_prefix(engine::TOO_MANY_GROUPS) {
            let why = why.trim_start_matches(": ").to_owned();
            return async_graphql::Error::new(why)
                .extend_with(|_, ext| ext.set("code", engine::TOO_MANY_GROUPS));
        }
    }
    if is_statement_timeout(&e) {
        tracing::warn!(error = %e, "a stats query ran past dashboard.statement_timeout_ms");
        return async_graphql::Error::new(
            "the query ran longer than dashboard.statement_timeout_ms and was stopped; ask for fewer days, dimensions or filters",
        )
        .extend_with(|_, ext| ext.set("code", "QUERY_TIMEOUT"));
    }
    tracing::error!(error = %e, "stats query failed");
    async_graphql::Error::new("the database did not answer; try again")
        .extend_with(|_, ext| ext.set("code", "DATABASE_UNAVAILABLE"))
}

/// PostgreSQL's `query_canceled` by `statement_timeout`.
fn is_statement_timeout(e: &sea_orm::DbErr) -> bool {
    e.to_string()
        .contains("canceling statement due to statement timeout")
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
    /// The site's stored events are being counted (just added, or its zone changed): these
    /// numbers are not complete yet.
    pub counting: bool,
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
    /// Its values come from goals or custom events.
    pub of_events: bool,
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
    /// Counted for goals only (with a `GOAL` dimension or filter).
    pub of_goals: bool,
}

pub struct QueryRoot;

#[Object]
impl QueryRoot {
    /// Metrics of a site over local dates, broken down by dimensions, filtered, ordered.
    /// Each one costs 50 of `dashboard.max_complexity` (500): aliases cannot pack a hundred
    /// queries into one request.
    #[graphql(complexity = "50 + child_complexity")]
    async fn stats(&self, ctx: &Context<'_>, query: StatsQuery) -> async_graphql::Result<Answer> {
        require_site(ctx, &query.site)?;
        let reader = ctx.data::<Reader>()?;
        let checked = reader.check(&query, ctx.data::<Role>()?).await?;
        reader.run(&checked, None).await
    }

    /// Goals completed in order within one visit: visitors per step, conversion from the first
    /// step, drop-off from the one before.
    #[graphql(complexity = "50 + child_complexity")]
    async fn funnel(&self, ctx: &Context<'_>, query: FunnelQuery) -> async_graphql::Result<Funnel> {
        require_site(ctx, &query.site)?;
        ctx.data::<Reader>()?
            .funnel(&query, ctx.data::<Role>()?)
            .await
    }

    /// The goals of a site, by name.
    async fn goals(&self, ctx: &Context<'_>, site: String) -> async_graphql::Result<Vec<GoalInfo>> {
        require_site(ctx, &site)?;
        let reader = ctx.data::<Reader>()?;
        let site = site.trim().to_ascii_lowercase();
        goals::list(&reader.db, &site).await.map_err(database)
    }

    /// The registered sites this token may read, by domain.
    async fn sites(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<SiteInfo>> {
        let reader = ctx.data::<Reader>()?;
        let role = ctx.data_opt::<Role>();
        // An admin sees the sites it just changed: read where changes go.
        let db = match role {
            Some(Role::Admin) => &reader.primary,
            _ => &reader.db,
        };
        let all = sites::list(db, &reader.analytics).await.map_err(database)?;
        Ok(all
            .into_iter()
            .filter(|site| role.is_some_and(|r| r.may_read(&site.domain)))
            .collect())
    }

    /// The tokens made with `createToken`, newest first (an admin token).
    async fn tokens(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<TokenInfo>> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        tokens::list(&reader.primary).await.map_err(database)
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
                of_events: dimension.scope().is_of_events(),
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
                    of_goals: metric.of_goals(),
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
        require_site(ctx, &site)?;
        current(ctx.data::<Reader>()?, ctx.data::<Role>()?, &site).await
    }

    /// What the request's token (or shared link) may do.
    async fn viewer(&self, ctx: &Context<'_>) -> async_graphql::Result<Viewer> {
        Ok(Viewer::of(ctx.data::<Role>()?))
    }

    /// A site's shared links, newest first (an admin token).
    async fn shared_links(
        &self,
        ctx: &Context<'_>,
        site: String,
    ) -> async_graphql::Result<Vec<SharedLink>> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        links::list(&reader.primary, &site.trim().to_ascii_lowercase())
            .await
            .map_err(database)
    }
}

/// What a request may do: the dashboard shows what it offers by it.
#[derive(SimpleObject)]
pub struct Viewer {
    pub scope: ViewerScope,
    /// The days a shared link is limited to, if it is.
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(async_graphql::Enum, Clone, Copy, PartialEq, Eq)]
pub enum ViewerScope {
    /// Reads and changes everything.
    Admin,
    /// Reads its sites.
    Read,
    /// A shared link: reads its one site.
    Shared,
}

impl Viewer {
    fn of(role: &Role) -> Viewer {
        let (scope, from, to) = match role {
            Role::Admin => (ViewerScope::Admin, None, None),
            Role::Reader(_) => (ViewerScope::Read, None, None),
            Role::Shared(shared) => (ViewerScope::Shared, shared.from, shared.to),
        };
        Viewer {
            scope,
            from: from.map(|d| d.to_string()),
            to: to.map(|d| d.to_string()),
        }
    }
}

async fn current(reader: &Reader, role: &Role, site: &str) -> async_graphql::Result<i64> {
    let site = reader.registered(&site.trim().to_ascii_lowercase()).await?;
    let today = Utc::now().with_timezone(&site.zone).date_naive();
    if !role.sees(today) {
        return Err(refused(QueryError::OutsideSharedRange(
            "its own dates, not today,".into(),
        )));
    }
    engine::current_visitors(
        &reader.db,
        &site.domain,
        today,
        reader.limits.realtime_window_s.get(),
    )
    .await
    .map_err(database)
}

pub struct MutationRoot;

#[Object]
impl MutationRoot {
    /// Creates a goal and counts the conversions already stored before answering (an admin
    /// token).
    async fn create_goal(
        &self,
        ctx: &Context<'_>,
        site: String,
        goal: GoalInput,
    ) -> async_graphql::Result<GoalInfo> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        let site = reader.site_to_change(&site).await?;
        let checked = goal.checked().map_err(|e| bad_input(e.to_string()))?;
        match goals::create(
            &reader.primary,
            &site,
            &checked,
            &reader.analytics.page_view_type,
        )
        .await
        {
            Ok(recorded) => {
                tracing::info!(
                    site,
                    goal = checked.name,
                    recorded,
                    "goal created, past conversions counted"
                );
            }
            Err(GoalChangeError::Database(e)) => return Err(database(e)),
            Err(e) => return Err(bad_input(e.to_string())),
        }
        Ok(GoalInfo::of(&checked))
    }

    /// Deletes a goal and its conversions; whether it existed (an admin token).
    async fn delete_goal(
        &self,
        ctx: &Context<'_>,
        site: String,
        name: String,
    ) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        let site = site.trim().to_ascii_lowercase();
        goals::delete(&reader.primary, &site, &name)
            .await
            .map_err(database)
    }

    /// Registers a site (an admin token): only registered sites are counted and shown. Events
    /// stored for it before are counted in the background (`counting` says while).
    async fn add_site(
        &self,
        ctx: &Context<'_>,
        domain: String,
        time_zone: Option<String>,
    ) -> async_graphql::Result<SiteInfo> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        let added = sites::add(
            &reader.primary,
            &reader.analytics,
            &domain,
            time_zone.as_deref(),
        )
        .await
        .map_err(SiteError::into_graphql)?;
        tracing::info!(site = %added.domain, "site registered");
        Ok(added)
    }

    /// Moves a site to another time zone (an admin token); its visits and rollups are counted
    /// again in it, in the background.
    async fn update_site(
        &self,
        ctx: &Context<'_>,
        domain: String,
        time_zone: String,
    ) -> async_graphql::Result<SiteInfo> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        sites::update(&reader.primary, &reader.analytics, &domain, &time_zone)
            .await
            .map_err(SiteError::into_graphql)
    }

    /// Deletes a site with its events, visits, rollups and goals, in one transaction (an admin
    /// token).
    async fn delete_site(&self, ctx: &Context<'_>, domain: String) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        sites::delete(&reader.primary, &domain)
            .await
            .map_err(SiteError::into_graphql)?;
        tracing::info!(site = %domain.trim(), "site deleted with its data");
        Ok(true)
    }

    /// Makes a token (an admin token): `READ` reads the listed sites only, `ADMIN` does
    /// everything. The token is in this answer only; just its SHA-256 is stored.
    async fn create_token(
        &self,
        ctx: &Context<'_>,
        name: String,
        scope: TokenScope,
        #[graphql(default)] sites: Vec<String>,
    ) -> async_graphql::Result<CreatedToken> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        let mut listed = Vec::with_capacity(sites.len());
        for site in &sites {
            listed.push(reader.site_to_change(site).await?);
        }
        if scope == TokenScope::Read && listed.is_empty() {
            return Err(bad_input(
                "sites: a READ token reads at least one site".into(),
            ));
        }
        let created = tokens::create(&reader.primary, &name, scope, &listed)
            .await
            .map_err(database)?;
        tracing::info!(token = %created.info.id, name = %created.info.name, "token created");
        Ok(created)
    }

    /// Makes a shared link of a site (an admin token): `/share/<id>` opens the dashboard
    /// read-only for that site, behind `password` if given (8 characters at least), showing
    /// only the days from `from` to `to` if given.
    async fn create_shared_link(
        &self,
        ctx: &Context<'_>,
        site: String,
        name: String,
        password: Option<String>,
        from: Option<String>,
        to: Option<String>,
    ) -> async_graphql::Result<SharedLink> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        let site = reader.site_to_change(&site).await?;
        let days =
            links::dates(from.as_deref(), to.as_deref()).map_err(|e| bad_input(e.to_string()))?;
        let hash = match password.filter(|p| !p.is_empty()) {
            None => None,
            // argon2id takes its 19 MiB and tens of milliseconds: not on the async threads.
            Some(password) => Some(
                tokio::task::spawn_blocking(move || links::hash_password(&password))
                    .await
                    .map_err(|e| async_graphql::Error::new(e.to_string()))?
                    .map_err(|e| bad_input(e.to_string()))?,
            ),
        };
        let link = links::create(&reader.primary, &site, &name, hash, days)
            .await
            .map_err(database)?;
        tracing::info!(site, link = %link.name, protected = link.protected, "shared link created");
        Ok(link)
    }

    /// Ends a shared link at once; whether it was open (an admin token).
    async fn revoke_shared_link(
        &self,
        ctx: &Context<'_>,
        id: String,
    ) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        links::revoke(&reader.primary, &id).await.map_err(database)
    }

    /// Ends a token made with `createToken` at once; whether it was in use (an admin token).
    async fn revoke_token(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<bool> {
        require_admin(ctx)?;
        let reader = ctx.data::<Reader>()?;
        tokens::revoke(&reader.primary, &id).await.map_err(database)
    }
}

fn bad_input(message: String) -> async_graphql::Error {
    async_graphql::Error::new(message).extend_with(|_, ext| ext.set("code", "BAD_USER_INPUT"))
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
        require_site(ctx, &site)?;
        let reader = ctx.data::<Reader>()?;
        let role = ctx.data::<Role>()?;
        // Held as long as the stream lives: ended by the client or with its socket.
        let slot = match ctx.data_opt::<SocketSubscriptions>() {
            Some(socket) => Some(socket.take()?),
            None => None,
        };
        let every = reader.limits.realtime_push();
        Ok(futures::stream::unfold(
            (true, slot),
            move |(first, slot)| {
                let site = site.clone();
                async move {
                    if !first {
                        tokio::time::sleep(every.max(Duration::from_millis(100))).await;
                    }
                    Some((current(reader, role, &site).await, (false, slot)))
                }
            },
        ))
    }
}

/// The subscriptions one WebSocket has open, at most `dashboard.max_subscriptions_per_socket`:
/// each one queries the database every push, so one socket cannot ask for thousands.
pub struct SocketSubscriptions {
    open: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    most: usize,
}

/// One open subscription of a socket; closing it frees its place.
pub struct SubscriptionSlot(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl SocketSubscriptions {
    pub fn new(most: usize) -> Self {
        SocketSubscriptions {
            open: Default::default(),
            most,
        }
    }

    fn take(&self) -> async_graphql::Result<SubscriptionSlot> {
        use std::sync::atomic::Ordering;
        let most = self.most;
        let taken = self
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < most).then_some(n + 1)
            });
        match taken {
            Ok(_) => Ok(SubscriptionSlot(std::sync::Arc::clone(&self.open))),
            Err(_) => Err(async_graphql::Error::new(format!(
                "this socket has {most} subscriptions open (dashboard.max_subscriptions_per_socket); complete one first"
            ))
            .extend_with(|_, ext| ext.set("code", "TOO_MANY_SUBSCRIPTIONS"))),
        }
    }
}

impl Drop for SubscriptionSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

pub fn build(reader: Reader) -> StatsSchema {
    let (depth, complexity) = (
        reader.limits.max_depth.get(),
        reader.limits.max_complexity.get(),
    );
    Schema::build(QueryRoot, MutationRoot, SubscriptionRoot)
        .data(reader)
        .limit_depth(depth)
        .limit_complexity(complexity)
        .finish()
}
