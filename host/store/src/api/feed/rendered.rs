//! Feed pages rendered once and served to every reader that asks for the same page: a write
//! wakes every long-polling child at once, and each would otherwise render the same `recent`
//! page again; a catch-up storm reads the same archive pages over and over.
//!
//! A page's bytes are fixed by what names it: the address its links are made under, the
//! category, how it was asked for and its plan (positions and length in an append-only log,
//! the newest page's number). Readers asking for a page being rendered wait for that render
//! instead of starting their own. The cache is bounded in bytes; the oldest pages leave first.

use std::collections::{HashMap, VecDeque};
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
}

type Slot = Arc<OnceCell<Bytes>>;

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
}

impl RenderedPages {
    /// The page named `key`: from the cache, from a render another reader is making, or from
    /// `render`, run here and shared with every reader asking meanwhile.
    pub async fn get_or_render<E>(
        &self,
        key: PageKey,
        render: impl FnOnce() -> Result<Bytes, E>,
    ) -> Result<Bytes, E> {
        let slot = self.slot(&key);
        let mut rendered_here = false;
        let bytes = slot
            .get_or_try_init(|| async {
                rendered_here = true;
                render()
            })
            .await?
            .clone();
        if rendered_here {
            self.account(key, bytes.len());
        }
        Ok(bytes)
    }

    /// Renders made so far (not served from the cache or a shared render).
    pub fn renders(&self) -> u64 {
        self.lock().renders
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

    /// Counts a finished render and evicts the oldest pages beyond the byte bound.
    fn account(&self, key: PageKey, len: usize) {
        let mut inner = self.lock();
        inner.renders += 1;
        if !inner.slots.contains_key(&key) {
            return;
        }
        inner.bytes += len;
        while inner.bytes > CACHE_BYTES {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(slot) = inner.slots.remove(&oldest) {
                inner.bytes = inner.bytes.saturating_sub(slot.get().map_or(0, Bytes::len));
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // Entries are added and removed whole under the lock.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
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
            assert_eq!(&page[..], b"page one");
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
        assert_eq!(failed, Err("store down"));
        let page = pages
            .get_or_render(key(1), || Ok::<_, &str>(Bytes::from_static(b"ok")))
            .await;
        assert_eq!(page, Ok(Bytes::from_static(b"ok")));
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
