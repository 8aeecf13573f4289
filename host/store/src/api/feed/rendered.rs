//! Feed pages rendered once and served to every reader that asks for the same page: a write
//! wakes every long-polling child at once, and each would otherwise render the same `recent`
//! page again; a catch-up storm reads the same archive pages over and over.
//!
//! A page's bytes are fixed by what names it: the address its links are made under, the
//! category, how it was asked for and its plan (positions and length in an append-only log,
//! the newest page's number). Readers asking for a page being rendered wait for that render
//! instead of starting their own. A page is gzip-compressed once too, the first time a reader
//! accepts it, and every later reader of that page gets the same compressed bytes. The cache is
//! bounded in bytes (plain and compressed); the oldest pages leave first.

use std::collections::{HashMap, VecDeque};
use std::io::Write;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use tokio::sync::OnceCell;

use super::paging::{PagePlan, PageRequest};

/// Bytes of rendered pages kept at most.
const CACHE_BYTES: usize = 32 * 1024 * 1024;

/// What names one rendered page.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PageKey {
    /// The public origin and feed base the page's links are made under.
    pub category_url: String,
    /// The category.
    pub category: String,
    /// `recent` or a number.
    pub request: PageRequest,
    /// The page worked out from the category's size.
    pub plan: PagePlan,
    /// The data scope the page is filtered for ([`DataScope::digest`]); `None` for all.
    ///
    /// [`DataScope::digest`]: crate::scope::DataScope::digest
    pub scope: Option<String>,
}

/// One rendered page: its XML, and its gzip form once a reader asked for it.
#[derive(Debug)]
pub struct Rendered {
    /// The page as rendered.
    pub xml: Bytes,
    gzip: OnceCell<Bytes>,
}

impl Rendered {
    fn new(xml: Bytes) -> Rendered {
        Rendered {
            xml,
            gzip: OnceCell::new(),
        }
    }

    fn bytes(&self) -> usize {
        self.xml.len() + self.gzip.get().map_or(0, Bytes::len)
    }
}

type Slot = Arc<OnceCell<Arc<Rendered>>>;

/// Pages rendered and being rendered.
#[derive(Debug, Default)]
pub struct RenderedPages {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    slots: HashMap<PageKey, Slot>,
    /// Keys in the order they were added, for eviction.
    order: VecDeque<PageKey>,
    bytes: usize,
    /// Renders actually made, for tests and the bench.
    renders: u64,
    /// Compressions actually made.
    compressions: u64,
}

impl RenderedPages {
    /// The page named `key`: from the cache, from a render another reader is making, or from
    /// `render`, run here and shared with every reader asking meanwhile.
    pub async fn get_or_render<E>(
        &self,
        key: PageKey,
        render: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Arc<Rendered>, E> {
        let slot = self.slot(&key);
        let mut rendered_here = false;
        let page = slot
            .get_or_try_init(|| async {
                rendered_here = true;
                render().map(|xml| Arc::new(Rendered::new(xml)))
            })
            .await?;
        let page = Arc::clone(page);
        if rendered_here {
            let mut inner = self.lock();
            inner.renders += 1;
            if inner.slots.contains_key(&key) {
                inner.bytes += page.xml.len();
                inner.evict();
            }
        }
        Ok(page)
    }

    /// The gzip form of `page` (named `key`), compressed by the first reader that asks and
    /// shared after.
    pub async fn gzip(&self, key: &PageKey, page: &Rendered) -> Bytes {
        let mut compressed_here = false;
        let gzip = page
            .gzip
            .get_or_init(|| async {
                compressed_here = true;
                gzip(&page.xml)
            })
            .await
            .clone();
        if compressed_here {
            let mut inner = self.lock();
            inner.compressions += 1;
            // A page evicted meanwhile no longer counts towards the cache.
            let cached = inner.slots.get(key).and_then(|slot| slot.get());
            if cached.is_some_and(|cached| std::ptr::eq(cached.as_ref(), page)) {
                inner.bytes += gzip.len();
                inner.evict();
            }
        }
        gzip
    }

    /// Renders made so far (not served from the cache or a shared render).
    pub fn renders(&self) -> u64 {
        self.lock().renders
    }

    /// Compressions made so far.
    pub fn compressions(&self) -> u64 {
        self.lock().compressions
    }

    fn slot(&self, key: &PageKey) -> Slot {
        let mut inner = self.lock();
        if let Some(slot) = inner.slots.get(key) {
            return Arc::clone(slot);
        }
        let slot = Slot::default();
        inner.slots.insert(key.clone(), Arc::clone(&slot));
        inner.order.push_back(key.clone());
        slot
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Entries are added and removed whole under the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Inner {
    /// Evicts the oldest pages while the cache holds more than its bytes.
    fn evict(&mut self) {
        while self.bytes > CACHE_BYTES {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(slot) = self.slots.remove(&oldest) {
                let held = slot.get().map_or(0, |page| page.bytes());
                self.bytes = self.bytes.saturating_sub(held);
            }
        }
    }
}

/// `xml` gzip-compressed, at the default level: a page is compressed once and served many
/// times, so the smaller answer is worth the slower compression.
fn gzip(xml: &[u8]) -> Bytes {
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(xml.len() / 4),
        flate2::Compression::default(),
    );
    // The encoder writes into a `Vec`, which never fails: neither call can return an error.
    encoder.write_all(xml).expect("writing to memory");
    encoder.finish().expect("writing to memory").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(number: u64) -> PageKey {
        PageKey {
            category_url: "http://parent/ws/atomfeed/all".into(),
            category: "all".into(),
            request: PageRequest::Number(number),
            plan: PagePlan {
                number,
                start: (number - 1) * 100,
                len: 100,
                last_number: number,
                is_archive: true,
                recent_number: 99,
            },
            scope: None,
        }
    }

    #[tokio::test]
    async fn a_page_is_rendered_once_for_every_reader() {
        let pages = RenderedPages::default();
        for _ in 0..3 {
            let page = pages
                .get_or_render(key(1), || Ok::<_, ()>(Bytes::from_static(b"page one")))
                .await
                .unwrap();
            assert_eq!(&page.xml[..], b"page one");
        }
        assert_eq!(pages.renders(), 1);
        pages
            .get_or_render(key(2), || Ok::<_, ()>(Bytes::from_static(b"two")))
            .await
            .unwrap();
        assert_eq!(pages.renders(), 2);
    }

    #[tokio::test]
    async fn a_failed_render_is_tried_again_by_the_next_reader() {
        let pages = RenderedPages::default();
        let failed = pages
            .get_or_render(key(1), || Err::<Bytes, _>("store down"))
            .await;
        assert_eq!(failed.unwrap_err(), "store down");
        let page = pages
            .get_or_render(key(1), || Ok::<_, &str>(Bytes::from_static(b"ok")))
            .await
            .unwrap();
        assert_eq!(page.xml, Bytes::from_static(b"ok"));
    }

    #[tokio::test]
    async fn a_page_is_compressed_once_and_the_compression_counts_in_the_cache() {
        let pages = RenderedPages::default();
        let xml = Bytes::from("<entry/>".repeat(1000));
        let page = pages
            .get_or_render(key(1), || Ok::<_, ()>(xml.clone()))
            .await
            .unwrap();
        let first = pages.gzip(&key(1), &page).await;
        let again = pages.gzip(&key(1), &page).await;
        assert_eq!(first, again);
        assert_eq!(pages.compressions(), 1);
        assert!(first.len() < xml.len() / 10, "{} bytes", first.len());
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&first[..]), &mut plain)
            .unwrap();
        assert_eq!(plain, xml);
        assert_eq!(pages.lock().bytes, xml.len() + first.len());
    }

    #[tokio::test]
    async fn the_cache_keeps_within_its_bytes() {
        let pages = RenderedPages::default();
        let big = Bytes::from(vec![b'x'; CACHE_BYTES / 4 + 1]);
        for number in 1..=8 {
            let page = big.clone();
            pages
                .get_or_render(key(number), || Ok::<_, ()>(page))
                .await
                .unwrap();
        }
        let inner = pages.lock();
        assert!(inner.bytes <= CACHE_BYTES, "{}", inner.bytes);
        assert!(inner.slots.len() < 8);
    }
}
