//! The HTTP connections to one provider.
//!
//! Over HTTP/1.1 every stream needs its own connection, each with its own buffers on both
//! sides. Over HTTP/2 one connection carries many streams, but servers cap how many
//! (`SETTINGS_MAX_CONCURRENT_STREAMS`), and a client that shares one connection makes the
//! streams past the cap wait for a free one: under load, a first token would wait for other
//! answers to end. So a provider holds lanes, each an HTTP client with its own connection
//! pool, and a stream takes a place on the first lane with room
//! (`max_streams_per_connection`), opening a lane when every lane is full. Packing streams
//! onto the first lanes lets the later ones go idle (their connections close) when load
//! falls.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use frontdesk_core::config::{HttpVersion, DEFAULT_STREAMS_PER_CONNECTION};
use frontdesk_core::model::ModelError;

use crate::Timeouts;

/// How often an idle HTTP/2 connection is pinged, so a dead one is noticed before a stream
/// waits on it.
const KEEP_ALIVE: Duration = Duration::from_secs(30);

/// How a provider's connections are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    pub version: HttpVersion,
    /// Streams per lane (one HTTP/2 connection).
    pub max_streams_per_connection: usize,
    pub timeouts: Timeouts,
}

impl HttpSettings {
    /// The defaults: HTTP/2 where the server offers it, 100 streams a connection.
    pub fn new(timeouts: Timeouts) -> Self {
        Self {
            version: HttpVersion::Auto,
            max_streams_per_connection: DEFAULT_STREAMS_PER_CONNECTION as usize,
            timeouts,
        }
    }
}

/// One HTTP client and how many streams it carries now.
#[derive(Debug)]
struct Lane {
    client: reqwest::Client,
    streams: AtomicUsize,
}

/// A provider's lanes.
#[derive(Debug)]
pub struct Connections {
    settings: HttpSettings,
    /// Whether streams share connections: past the per-connection cap a new lane opens.
    multiplexed: bool,
    lanes: RwLock<Vec<Arc<Lane>>>,
}

/// A stream's place on a lane, given back when it is dropped (when the answer's body is
/// read to its end, or abandoned).
#[derive(Debug)]
pub struct Lease {
    lane: Arc<Lane>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.lane.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Connections {
    /// The connections to the server at `base_url`.
    pub fn new(base_url: &str, settings: HttpSettings) -> Result<Self, ModelError> {
        let multiplexed = match settings.version {
            HttpVersion::Http1 => false,
            HttpVersion::Http2 => true,
            // ALPN offers HTTP/2 only over TLS.
            HttpVersion::Auto => base_url.starts_with("https://"),
        };
        let first = Arc::new(lane(&settings)?);
        Ok(Self {
            settings,
            multiplexed,
            lanes: RwLock::new(vec![first]),
        })
    }

    /// A client for one stream, with its place held until the lease is dropped.
    pub fn lease(&self) -> Result<(reqwest::Client, Lease), ModelError> {
        let cap = if self.multiplexed {
            self.settings.max_streams_per_connection.max(1)
        } else {
            usize::MAX
        };
        {
            let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
            if let Some(taken) = lanes.iter().find_map(|lane| take(lane, cap)) {
                return Ok(taken);
            }
        }
        let mut lanes = self.lanes.write().unwrap_or_else(|e| e.into_inner());
        // Another stream may have opened a lane, or left one, meanwhile.
        if let Some(taken) = lanes.iter().find_map(|lane| take(lane, cap)) {
            return Ok(taken);
        }
        let fresh = Arc::new(lane(&self.settings)?);
        let taken = take(&fresh, cap).ok_or_else(|| ModelError::Config("no lane".into()))?;
        lanes.push(fresh);
        Ok(taken)
    }

    /// How many lanes there are, and the streams on each.
    #[cfg(test)]
    fn lanes(&self) -> Vec<usize> {
        let lanes = self.lanes.read().unwrap_or_else(|e| e.into_inner());
        lanes
            .iter()
            .map(|lane| lane.streams.load(Ordering::Acquire))
            .collect()
    }
}

/// A place on `lane` if it carries fewer than `cap` streams.
fn take(lane: &Arc<Lane>, cap: usize) -> Option<(reqwest::Client, Lease)> {
    lane.streams
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < cap).then_some(n + 1)
        })
        .ok()?;
    Some((
        lane.client.clone(),
        Lease {
            lane: Arc::clone(lane),
        },
    ))
}

fn lane(settings: &HttpSettings) -> Result<Lane, ModelError> {
    let builder = reqwest::Client::builder().connect_timeout(settings.timeouts.connect);
    let builder = match settings.version {
        HttpVersion::Http1 => builder.http1_only(),
        HttpVersion::Http2 => builder.http2_prior_knowledge(),
        HttpVersion::Auto => builder,
    }
    .http2_keep_alive_interval(KEEP_ALIVE)
    .http2_keep_alive_timeout(settings.timeouts.connect);
    let client = builder
        .build()
        .map_err(|e| ModelError::Config(format!("cannot build the HTTP client: {e}")))?;
    Ok(Lane {
        client,
        streams: AtomicUsize::new(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(version: HttpVersion, cap: usize) -> HttpSettings {
        HttpSettings {
            version,
            max_streams_per_connection: cap,
            timeouts: Timeouts::default(),
        }
    }

    #[test]
    fn http2_streams_fill_a_lane_before_the_next_opens_and_leave_on_drop() {
        let connections =
            Connections::new("http://127.0.0.1:1/v1", settings(HttpVersion::Http2, 2))
                .unwrap_or_else(|e| panic!("{e}"));
        let mut leases: Vec<_> = (0..5)
            .map(|_| connections.lease().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(connections.lanes(), vec![2, 2, 1]);
        leases.remove(1);
        assert_eq!(
            connections.lanes(),
            vec![1, 2, 1],
            "a stream left the first lane"
        );
        leases.push(connections.lease().unwrap_or_else(|e| panic!("{e}")));
        assert_eq!(
            connections.lanes(),
            vec![2, 2, 1],
            "the first lane with room"
        );
        leases.clear();
        assert_eq!(connections.lanes(), vec![0, 0, 0]);
    }

    #[test]
    fn http1_and_plain_http_auto_keep_one_lane() {
        for (url, version) in [
            ("https://api.example.com/v1", HttpVersion::Http1),
            ("http://127.0.0.1:1/v1", HttpVersion::Auto),
        ] {
            let connections =
                Connections::new(url, settings(version, 2)).unwrap_or_else(|e| panic!("{e}"));
            let _leases: Vec<_> = (0..5)
                .map(|_| connections.lease().unwrap_or_else(|e| panic!("{e}")))
                .collect();
            assert_eq!(connections.lanes(), vec![5], "{url} {version:?}");
        }
        let tls = Connections::new("https://api.example.com/v1", settings(HttpVersion::Auto, 2))
            .unwrap_or_else(|e| panic!("{e}"));
        let _leases: Vec<_> = (0..3)
            .map(|_| tls.lease().unwrap_or_else(|e| panic!("{e}")))
            .collect();
        assert_eq!(tls.lanes(), vec![2, 1], "HTTPS may be HTTP/2");
    }
}
