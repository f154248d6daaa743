//! Limits against slow and hostile clients: connections per address, a minimum rate for
//! request bodies, and a bound on each multipart part's headers. (The header timeout and the
//! total connection count are set where connections are served, in `run`.)

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};

/// A request body must average at least this many bytes a second...
pub const MIN_BODY_RATE: u64 = 1024;
/// ...once this long has passed since it began (a client may pause at first).
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// Longest header block of one multipart part.
pub const MAX_PART_HEADERS: usize = 16 * 1024;

/// The connections open from each client address; an IPv6 address counts by its /64, the
/// block one subscriber usually holds.
#[derive(Clone, Default)]
pub struct PerAddress {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

/// One connection counted against its address; uncounted when dropped.
pub struct AddressSlot {
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
    key: IpAddr,
}

impl PerAddress {
    fn key(ip: IpAddr) -> IpAddr {
        match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => IpAddr::V4(v4),
                None => {
                    let bits = u128::from(v6) & !((1u128 << 64) - 1);
                    IpAddr::V6(bits.into())
                }
            },
        }
    }

    /// A slot for one more connection from `ip`, or `None` when it has `limit` open already.
    pub fn admit(&self, ip: IpAddr, limit: usize) -> Option<AddressSlot> {
        let key = Self::key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= limit {
            return None;
        }
        *count += 1;
        Some(AddressSlot {
            open: self.open.clone(),
            key,
        })
    }

    /// Addresses with a connection open now.
    #[cfg(test)]
    pub fn addresses(&self) -> usize {
        self.open.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// Middleware: the request body fails when it arrives slower than [`MIN_BODY_RATE`] on
/// average after [`BODY_GRACE`], and a multipart body fails when a part's headers run past
/// [`MAX_PART_HEADERS`]. A client cannot hold a connection by trickling a body slower than
/// that; one that keeps up the rate is served (a slow upload on a poor link is legitimate, and
/// the per-address limit bounds how many such connections one client holds).
pub async fn guard_body(request: Request, next: Next) -> Response {
    let boundary = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(multipart_boundary);
    let (parts, body) = request.into_parts();
    let stream = body.into_data_stream();
    let guarded = Guarded {
        inner: Box::pin(stream),
        started: Instant::now(),
        received: 0,
        parts: boundary.map(PartHeaders::new),
        alarm: Box::pin(tokio::time::sleep(BODY_GRACE)),
    };
    next.run(Request::from_parts(parts, Body::from_stream(guarded)))
        .await
}

/// The boundary of a `multipart/…` content type.
fn multipart_boundary(content_type: &str) -> Option<Vec<u8>> {
    let (kind, params) = content_type.split_once(';')?;
    if !kind.trim().to_ascii_lowercase().starts_with("multipart/") {
        return None;
    }
    params.split(';').find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("boundary")
            .then(|| value.trim().trim_matches('"').as_bytes().to_vec())
            .filter(|b| !b.is_empty())
    })
}

/// Why a body was refused.
#[derive(Debug)]
pub struct BodyRefused(String);

impl std::fmt::Display for BodyRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BodyRefused {}

struct Guarded {
    inner: Pin<Box<dyn Stream<Item = Result<Bytes, axum::Error>> + Send>>,
    started: Instant,
    received: u64,
    parts: Option<PartHeaders>,
    /// Wakes a quiet body when it falls below the rate.
    alarm: Pin<Box<tokio::time::Sleep>>,
}

impl Stream for Guarded {
    type Item = Result<Bytes, BodyRefused>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let item = match this.inner.poll_next_unpin(cx) {
            Poll::Ready(item) => item,
            // Checked while the client is quiet too: a stalled body fails on time.
            Poll::Pending => loop {
                if let Some(refused) = this.too_slow() {
                    return Poll::Ready(Some(Err(refused)));
                }
                let at = tokio::time::Instant::from_std(this.next_check());
                if this.alarm.deadline() != at {
                    this.alarm.as_mut().reset(at);
                }
                if this.alarm.as_mut().poll(cx).is_pending() {
                    return Poll::Pending;
                }
            },
        };
        match item {
            None => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(BodyRefused(e.to_string())))),
            Some(Ok(chunk)) => {
                this.received += chunk.len() as u64;
                if let Some(parts) = this.parts.as_mut()
                    && let Err(refused) = parts.scan(&chunk)
                {
                    return Poll::Ready(Some(Err(refused)));
                }
                match this.too_slow() {
                    Some(refused) => Poll::Ready(Some(Err(refused))),
                    None => Poll::Ready(Some(Ok(chunk))),
                }
            }
        }
    }
}

impl Guarded {
    fn too_slow(&self) -> Option<BodyRefused> {
        let elapsed = self.started.elapsed();
        if elapsed < BODY_GRACE {
            return None;
        }
        let due = (elapsed.as_secs_f64() * MIN_BODY_RATE as f64) as u64;
        (self.received < due).then(|| {
            BodyRefused(format!(
                "the request body arrived too slowly: {} bytes in {} s, below {MIN_BODY_RATE} \
                 bytes a second",
                self.received,
                elapsed.as_secs()
            ))
        })
    }

    /// When the body falls below the rate if nothing more arrives.
    fn next_check(&self) -> Instant {
        let covered = Duration::from_secs_f64(self.received as f64 / MIN_BODY_RATE as f64);
        self.started + covered.max(BODY_GRACE) + Duration::from_millis(10)
    }
}

/// Watches a multipart body for part headers longer than [`MAX_PART_HEADERS`]: after each
/// delimiter (`--boundary`), the bytes up to the blank line that ends the part's headers.
/// Positions are offsets from the body's start, so the verdict does not depend on how the
/// body is cut into chunks.
struct PartHeaders {
    /// `\r\n--boundary`; the body's first delimiter, which lacks the line break, is found
    /// because the scan starts as if after one.
    delimiter: Vec<u8>,
    /// The last bytes seen, to find a delimiter or the headers' end across chunks...
    tail: Vec<u8>,
    /// ...and where the first of them is.
    tail_at: u64,
    /// Where the current part's headers began, or `None` inside a part's content.
    headers_from: Option<u64>,
}

impl PartHeaders {
    fn new(boundary: Vec<u8>) -> Self {
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(&boundary);
        Self {
            delimiter,
            tail: b"\r\n".to_vec(),
            tail_at: 0,
            headers_from: None,
        }
    }

    fn scan(&mut self, chunk: &[u8]) -> Result<(), BodyRefused> {
        // The tail and the chunk, searched as one.
        let base = self.tail_at;
        let mut joined = std::mem::take(&mut self.tail);
        joined.extend_from_slice(chunk);
        let mut at = 0;
        loop {
            match self.headers_from {
                None => match memchr::memmem::find(&joined[at..], &self.delimiter) {
                    Some(found) => {
                        at += found + self.delimiter.len();
                        self.headers_from = Some(base + at as u64);
                    }
                    None => break,
                },
                Some(from) => match memchr::memmem::find(&joined[at..], b"\r\n\r\n") {
                    Some(found) => {
                        check(base + (at + found) as u64 - from)?;
                        at += found + 4;
                        self.headers_from = None;
                    }
                    None => {
                        check(base + joined.len() as u64 - from)?;
                        break;
                    }
                },
            }
        }
        let keep = self.delimiter.len().max(4) - 1;
        let start = joined.len().saturating_sub(keep).max(at);
        self.tail = joined.split_off(start);
        self.tail_at = base + start as u64;
        Ok(())
    }
}

fn check(header_bytes: u64) -> Result<(), BodyRefused> {
    if header_bytes > MAX_PART_HEADERS as u64 {
        return Err(BodyRefused(format!(
            "a multipart part's headers run past {MAX_PART_HEADERS} bytes"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn scan_in(body: &[u8], split: &[usize]) -> Result<(), BodyRefused> {
        let mut parts = PartHeaders::new(b"XyZ".to_vec());
        let mut last = 0;
        for &at in split.iter().chain(std::iter::once(&body.len())) {
            let at = at.clamp(last, body.len());
            parts.scan(&body[last..at])?;
            last = at;
        }
        Ok(())
    }

    fn body(header_len: usize, content: &[u8]) -> Vec<u8> {
        let mut b = b"--XyZ\r\nContent-Disposition: form-data; name=\"file\"\r\nX-Pad: ".to_vec();
        b.extend(std::iter::repeat_n(b'a', header_len));
        b.extend_from_slice(b"\r\n\r\n");
        b.extend_from_slice(content);
        b.extend_from_slice(b"\r\n--XyZ--\r\n");
        b
    }

    /// The length of `body`'s headers without the pad: from after `--XyZ` to the blank line.
    fn fixed_headers() -> usize {
        let b = body(0, b"");
        memchr::memmem::find(&b, b"\r\n\r\n").unwrap() - b"--XyZ".len()
    }

    #[test]
    fn long_part_headers_are_refused_short_ones_pass() {
        let at_limit = MAX_PART_HEADERS - fixed_headers();
        assert!(scan_in(&body(at_limit, b""), &[]).is_ok());
        assert!(scan_in(&body(at_limit + 1, b""), &[]).is_err());
        let content = vec![b'\n'; 100_000];
        assert!(scan_in(&body(1000, &content), &[]).is_ok());
        assert!(scan_in(&body(MAX_PART_HEADERS + 10, &content), &[]).is_err());
        // A second part with long headers, after a long content that looks like nothing.
        let mut two = body(10, &content);
        two.truncate(two.len() - 4);
        two.extend_from_slice(b"\r\nX: ");
        two.extend(std::iter::repeat_n(b'b', MAX_PART_HEADERS + 1));
        assert!(scan_in(&two, &[]).is_err());
        assert!(scan_in(&two, &[7, 8, 9, 20_000, 100_060]).is_err());
    }

    #[test]
    fn boundaries_are_read_from_content_types() {
        assert_eq!(
            multipart_boundary("multipart/form-data; boundary=\"a b\""),
            Some(b"a b".to_vec())
        );
        assert_eq!(
            multipart_boundary("Multipart/Form-Data;charset=x; BOUNDARY=q"),
            Some(b"q".to_vec())
        );
        assert_eq!(multipart_boundary("application/json; boundary=q"), None);
        assert_eq!(multipart_boundary("multipart/form-data; boundary="), None);
    }

    #[test]
    fn addresses_are_counted_by_ipv4_or_ipv6_slash_64() {
        let per = PerAddress::default();
        let a: IpAddr = "2001:db8::1".parse().unwrap();
        let b: IpAddr = "2001:db8::ffff:2".parse().unwrap();
        let c: IpAddr = "2001:db8:0:1::1".parse().unwrap();
        let first = per.admit(a, 2).unwrap();
        let _second = per.admit(b, 2).unwrap();
        assert!(per.admit(a, 2).is_none(), "the same /64 is one address");
        let _other = per.admit(c, 2).unwrap();
        drop(first);
        assert!(
            per.admit(b, 2).is_some(),
            "a closed connection frees its slot"
        );
        assert_eq!(per.addresses(), 2);
    }

    proptest! {
        /// However the body is cut into chunks, the verdict is the same.
        #[test]
        fn chunking_does_not_change_the_verdict(
            header_len in 0usize..(2 * MAX_PART_HEADERS),
            content in proptest::collection::vec(any::<u8>(), 0..2000),
            cuts in proptest::collection::vec(0usize..40_000, 0..12),
        ) {
            let b = body(header_len, &content);
            let mut cuts = cuts;
            cuts.sort_unstable();
            let whole = scan_in(&b, &[]).is_ok();
            prop_assert_eq!(scan_in(&b, &cuts).is_ok(), whole);
            // The fixed header lines and the pad decide.
            prop_assert_eq!(whole, header_len + fixed_headers() <= MAX_PART_HEADERS);
        }
    }
}
