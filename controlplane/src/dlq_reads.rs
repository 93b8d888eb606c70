//! Dead-letter reads for redrive jobs, served from the `read_dlq` read model: the glue
//! between the write side's [`DlqReads`] contract and the projections.

use chrono::{DateTime, Utc};
use commands::dlq_redrive::{DlqReads, EntryKeys, RedriveFilter};
use commands::CommandError;
use futures::future::BoxFuture;
use projections::dlq::DlqFilter;
use sqlx::PgPool;

pub struct ReadModelDlqReads {
    pub pool: PgPool,
}

fn open_filter(filter: &RedriveFilter, created_before: DateTime<Utc>) -> DlqFilter {
    DlqFilter {
        resolved: Some(false),
        subject: filter.subject.clone(),
        error_contains: filter.error_contains.clone(),
        since: filter.since,
        until: Some(created_before),
    }
}

impl DlqReads for ReadModelDlqReads {
    fn next_open<'a>(
        &'a self,
        filter: &'a RedriveFilter,
        created_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
        limit: i64,
    ) -> BoxFuture<'a, Result<EntryKeys, CommandError>> {
        Box::pin(async move {
            let filter = open_filter(filter, created_before);
            Ok(projections::dlq::next_after(&self.pool, &filter, after, limit).await?)
        })
    }

    fn count_open<'a>(
        &'a self,
        filter: &'a RedriveFilter,
        created_before: DateTime<Utc>,
        after: Option<(DateTime<Utc>, String)>,
    ) -> BoxFuture<'a, Result<i64, CommandError>> {
        Box::pin(async move {
            let filter = open_filter(filter, created_before);
            Ok(projections::dlq::count_after(&self.pool, &filter, after).await?)
        })
    }
}
