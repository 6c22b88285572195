//! One batch's transaction: its statements' parameters, and `BEGIN`, the statements and
//! `COMMIT` sent at once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::task::Poll;

use super::{Failed, Used, Write};
use crate::error::Error;
use crate::store::postgres::pool::{Conn, Q};
use crate::store::postgres::schema::LOG_LOCK;
use crate::store::postgres::{int, to_json};
use crate::store::SessionRecord;

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// A write's parameters, owned (the pipelined statements borrow them).
enum Owned<'a> {
    Put(&'a [u8], &'a SessionRecord, i64, String),
    Touch(&'a [u8], i64, String),
    Remove(&'a [u8]),
    Replace(&'a [u8], &'a [u8], &'a SessionRecord, i64, String),
    Use(&'a Used),
    UseOpen(&'a Used, &'a [u8], &'a SessionRecord, i64, String),
}

impl<'a> Owned<'a> {
    fn of(write: &'a Write) -> Result<Option<Owned<'a>>, Error> {
        Ok(Some(match write {
            Write::Put { hash, record } => {
                Owned::Put(hash, record, int(record.expires_ms), to_json(record)?)
            }
            Write::Touch { hash, record } => {
                Owned::Touch(hash, int(record.expires_ms), to_json(record)?)
            }
            Write::Remove(hash) => Owned::Remove(hash),
            Write::Replace { old, hash, record } => {
                Owned::Replace(old, hash, record, int(record.expires_ms), to_json(record)?)
            }
            Write::SignIn {
                used,
                session: None,
                ..
            } => Owned::Use(used),
            Write::SignIn {
                used,
                session: Some((hash, record)),
                ..
            } => Owned::UseOpen(used, hash, record, int(record.expires_ms), to_json(record)?),
            Write::Flush(_) => return Ok(None),
        }))
    }

    /// Its statement and parameters.
    fn statement(&'a self, conn: &'a Conn) -> (&'a tokio_postgres::Statement, Vec<Param<'a>>) {
        fn used(u: &Used) -> [Param<'_>; 6] {
            [
                &u.cred_id,
                &u.owner,
                &u.counter,
                &u.backup_eligible,
                &u.backup_state,
                &u.at,
            ]
        }
        match self {
            Owned::Put(hash, record, expires, text) => (
                conn.st(Q::put_session),
                vec![hash, &record.id, &record.user_id, expires, text],
            ),
            Owned::Touch(hash, expires, text) => {
                (conn.st(Q::touch_session), vec![hash, expires, text])
            }
            Owned::Remove(hash) => (conn.st(Q::remove_session), vec![hash]),
            Owned::Replace(old, hash, record, expires, text) => (
                conn.st(Q::replace_session),
                vec![old, hash, &record.id, &record.user_id, expires, text],
            ),
            Owned::Use(u) => (conn.st(Q::record_use), used(u).to_vec()),
            Owned::UseOpen(u, hash, record, expires, text) => {
                let mut params = used(u).to_vec();
                params.extend([hash as Param, &record.id, expires, text]);
                (conn.st(Q::record_use_open), params)
            }
        }
    }
}

/// Commits the writes in one transaction, `BEGIN`, statements and `COMMIT` pipelined (one
/// write alone is its own transaction); the rows each statement wrote, in order.
pub(super) async fn commit(
    conn: &mut Option<Conn>,
    config: &tokio_postgres::Config,
    runtime: &tokio::runtime::Handle,
    writes: &[Write],
    log_high: &AtomicI64,
) -> Result<Vec<u64>, Failed> {
    if conn.is_none() {
        *conn = Some(Conn::open(config, runtime).await?);
    }
    let Some(conn) = conn.as_ref() else {
        return Err(Error::internal("no connection").into());
    };
    let owned: Vec<Owned> = writes
        .iter()
        .filter_map(|w| Owned::of(w).transpose())
        .collect::<Result<_, _>>()?;
    let statements: Vec<_> = owned.iter().map(|o| o.statement(conn)).collect();
    let client = &conn.client;
    // A batch that writes the revocation log takes the log's lock first, before any row lock.
    let revokes = writes.iter().any(Write::revokes);
    if let ([(st, params)], false) = (statements.as_slice(), revokes) {
        return Ok(vec![client.execute(*st, params).await?]);
    }
    let begin = match revokes {
        true => format!("BEGIN; SELECT pg_advisory_xact_lock({LOG_LOCK})"),
        false => "BEGIN".to_owned(),
    };
    let mut pending: Vec<BoxFuture<'_, Result<u64, tokio_postgres::Error>>> =
        Vec::with_capacity(statements.len() + 2);
    pending.push(Box::pin(async move {
        client.batch_execute(&begin).await.map(|()| 0)
    }));
    for (st, params) in &statements {
        pending.push(Box::pin(client.execute(*st, params.as_slice())));
    }
    if revokes {
        // The newest log entry, ours (the lock is held): what the other nodes must apply.
        let newest = conn.st(Q::newest_revocation);
        pending.push(Box::pin(async move {
            let row = client.query_one(newest, &[]).await?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        }));
    }
    pending.push(Box::pin(async {
        client.batch_execute("COMMIT").await.map(|()| 0)
    }));
    let mut results = in_order(pending).await.into_iter();
    // In a transaction that failed, the statements after the failure fail too and `COMMIT`
    // rolls back: the first error is the one to report.
    results.next().transpose()?;
    let rows = results
        .by_ref()
        .take(statements.len())
        .collect::<Result<Vec<u64>, _>>()?;
    let newest = match revokes {
        true => results.next().transpose()?,
        false => None,
    };
    results.next().transpose()?;
    if let Some(newest) = newest {
        log_high.fetch_max(i64::try_from(newest).unwrap_or(0), Ordering::AcqRel);
    }
    Ok(rows)
}

type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Runs `futures` to completion, polling them in index order, so each sends its request in
/// that order (tokio-postgres sends a request on its future's first poll); their outputs, in
/// the same order.
async fn in_order<T>(futures: Vec<BoxFuture<'_, T>>) -> Vec<T> {
    let mut futures: Vec<_> = futures
        .into_iter()
        .map(futures_util::future::maybe_done)
        .collect();
    std::future::poll_fn(|cx| {
        let mut all = true;
        for future in &mut futures {
            all &= Pin::new(future).poll(cx).is_ready();
        }
        if all {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    futures
        .iter_mut()
        .filter_map(|future| Pin::new(future).take_output())
        .collect()
}
