//! Metrics of the node's feed serving, read at scrape time: the long-polls held now and the
//! pages rendered and compressed so far. A render per many readers is what lets one parent
//! serve a fleet; these show whether it does.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use sync_host_store::api::feed::{LongPolls, RenderedPages};

/// The feed's long-polls and page cache of an embedded store's API.
#[derive(Debug, Clone)]
pub struct FeedMetrics {
    /// Long-polls the feed holds.
    pub long_polls: Arc<LongPolls>,
    /// Pages the feed rendered.
    pub pages: Arc<RenderedPages>,
}

impl Collector for FeedMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        let held = ConstGauge::new(i64::try_from(self.long_polls.held()).unwrap_or(i64::MAX));
        let metric = encoder.encode_descriptor(
            "feed_long_polls",
            "Long-polls of the feed held open now",
            None,
            held.metric_type(),
        )?;
        held.encode(metric)?;
        let counters = [
            (
                "feed_page_renders",
                "Feed pages rendered (each is served to every reader asking for it)",
                self.pages.renders(),
            ),
            (
                "feed_page_compressions",
                "Feed pages compressed (each is served to every reader accepting gzip)",
                self.pages.compressions(),
            ),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value);
            let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
            counter.encode(metric)?;
        }
        Ok(())
    }
}
