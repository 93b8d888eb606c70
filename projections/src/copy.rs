//! Rows written with `COPY ... FROM STDIN (FORMAT binary)`: what replay uses to write a
//! whole read model at once. The binary format needs no escaping and PostgreSQL parses it
//! cheaply; each value is encoded exactly as sqlx encodes a bound parameter of the same
//! type, so a replayed row equals the row the live projector writes.

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::postgres::PgCopyIn;
use sqlx::PgConnection;
use uuid::Uuid;

/// Bytes collected before they are handed to the server (which parses one chunk while
/// the next is encoded).
const SEND_CHUNK: usize = 1 << 20;

/// Rows of one table on their way in, in PostgreSQL's binary COPY format.
pub(crate) struct BinaryCopy<'c> {
    copy: PgCopyIn<&'c mut PgConnection>,
    buf: Vec<u8>,
}

impl<'c> BinaryCopy<'c> {
    /// Starts `statement`, a `COPY <table> (<columns>) FROM STDIN (FORMAT binary)`.
    pub async fn start(conn: &'c mut PgConnection, statement: &str) -> Result<Self, sqlx::Error> {
        let copy = conn.copy_in_raw(statement).await?;
        let mut buf = Vec::with_capacity(SEND_CHUNK + 4096);
        buf.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        buf.extend_from_slice(&0i32.to_be_bytes()); // flags
        buf.extend_from_slice(&0i32.to_be_bytes()); // header extension length
        Ok(BinaryCopy { copy, buf })
    }

    /// Starts a row of `fields` values; sends what was collected when enough is.
    pub async fn row(&mut self, fields: i16) -> Result<&mut Self, sqlx::Error> {
        if self.buf.len() >= SEND_CHUNK {
            self.copy.send(self.buf.as_slice()).await?;
            self.buf.clear();
        }
        self.buf.extend_from_slice(&fields.to_be_bytes());
        Ok(self)
    }

    fn field(&mut self, bytes: &[u8]) -> &mut Self {
        let len = i32::try_from(bytes.len()).expect("a field below 2 GiB");
        self.buf.extend_from_slice(&len.to_be_bytes());
        self.buf.extend_from_slice(bytes);
        self
    }

    pub fn null(&mut self) -> &mut Self {
        self.buf.extend_from_slice(&(-1i32).to_be_bytes());
        self
    }

    pub fn text(&mut self, value: &str) -> &mut Self {
        self.field(value.as_bytes())
    }

    pub fn int8(&mut self, value: i64) -> &mut Self {
        self.field(&value.to_be_bytes())
    }

    pub fn opt_int8(&mut self, value: Option<i64>) -> &mut Self {
        match value {
            Some(v) => self.int8(v),
            None => self.null(),
        }
    }

    pub fn bool(&mut self, value: bool) -> &mut Self {
        self.field(&[u8::from(value)])
    }

    pub fn uuid(&mut self, value: Uuid) -> &mut Self {
        self.field(value.as_bytes())
    }

    /// Microseconds since 2000-01-01 UTC, computed as sqlx computes it for a parameter.
    pub fn timestamptz(&mut self, value: DateTime<Utc>) -> &mut Self {
        let epoch = NaiveDate::from_ymd_opt(2000, 1, 1)
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .expect("a valid date");
        let micros = (value.naive_utc() - epoch)
            .num_microseconds()
            .unwrap_or(i64::MAX);
        self.int8(micros)
    }

    /// Sends the rest and ends the COPY; returns how many rows the server took. (Dropped
    /// without it, the COPY fails and so does the transaction.)
    pub async fn finish(mut self) -> Result<u64, sqlx::Error> {
        self.buf.extend_from_slice(&(-1i16).to_be_bytes()); // trailer
        self.copy.send(self.buf.as_slice()).await?;
        self.copy.finish().await
    }
}
