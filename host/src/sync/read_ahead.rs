//! The catch-up's read-ahead stage: reads the feed pages after the one in hand, in order, and
//! fetches each one's source copies on a task of its own, a bounded number of pages ahead of
//! the commit.
//!
//! Two pages' fetches in flight keep a request outstanding on a slow link at every moment:
//! with one, the link idled for a round trip at the start of every page's fetch. Nothing here
//! is durable: pages are handed over in feed order and the caller decides and commits them.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::task::AbortOnDropHandle;
use tracing::Instrument;

use crate::sync::link::Link;
use crate::sync::pipeline::DecodedPage;
use crate::sync::prefetch::Prefetched;
use crate::sync::reader::{FeedReader, PageStep, ReadError};
use crate::sync::walk::PageWalk;

/// Pages read ahead of the one being committed, each with its copies fetched or in flight.
/// Each holds up to a catch-up span of entries (1,000 by default) and their bodies.
const PAGES_AHEAD: usize = 2;

/// A feed page read and decoded, with the source copies fetched for it ahead of its turn.
pub(crate) struct PageAhead {
    /// Where the page was and what follows it; its entries are in `page`.
    pub step: PageStep,
    pub page: DecodedPage,
    pub copies: Prefetched,
}

impl PageAhead {
    /// The page of `step`, with no copies fetched yet.
    pub fn decoded(mut step: PageStep) -> Self {
        let page = DecodedPage::new(std::mem::take(&mut step.entries));
        Self {
            step,
            page,
            copies: Prefetched::default(),
        }
    }
}

/// What the read-ahead stage hands over, in feed order.
pub(crate) enum Ahead {
    /// The next page, its copies being fetched on the task behind the handle.
    Page(AbortOnDropHandle<PageAhead>),
    /// Reading the next page failed; nothing follows.
    Failed(ReadError),
    /// The run's page limit stops reading here although the feed goes on.
    LimitReached,
}

/// The running stage: dropping it stops the reading and every fetch in flight.
pub(crate) struct ReadAhead {
    pages: mpsc::Receiver<Ahead>,
    /// Taken when the pages run out, to pass on a panic of the reading task.
    reading: Option<AbortOnDropHandle<()>>,
}

impl ReadAhead {
    /// Starts reading `feed` at the page `next`, counting pages in `walk`.
    pub fn start(feed: Arc<FeedReader>, link: Arc<Link>, next: String, walk: PageWalk) -> Self {
        let (sender, pages) = mpsc::channel(PAGES_AHEAD);
        let reading =
            read_pages(feed, link, next, walk, sender).instrument(tracing::Span::current());
        Self {
            pages,
            reading: Some(AbortOnDropHandle::new(tokio::spawn(reading))),
        }
    }

    /// The next page in feed order, or `None` after the feed's newest page.
    pub async fn next(&mut self) -> Option<Ahead> {
        if let Some(ahead) = self.pages.recv().await {
            return Some(ahead);
        }
        // The pages run out when the reading task has ended, by returning or by a panic; a
        // panic is passed on as if it had happened here rather than read as the feed's end.
        if let Some(reading) = self.reading.take()
            && let Err(e) = reading.await
            && e.is_panic()
        {
            std::panic::resume_unwind(e.into_panic());
        }
        None
    }
}

/// Reads page after page while a slot is free, handing each over as its fetch starts.
async fn read_pages(
    feed: Arc<FeedReader>,
    link: Arc<Link>,
    first: String,
    mut walk: PageWalk,
    pages: mpsc::Sender<Ahead>,
) {
    let mut next = Some(first);
    while let Some(url) = next.take() {
        // A free slot first, so no more than PAGES_AHEAD pages are ever held ahead.
        let Ok(slot) = pages.reserve().await else {
            return;
        };
        if walk.is_full() {
            slot.send(Ahead::LimitReached);
            return;
        }
        let step = match feed.read_step(None, Some(url), &mut walk).await {
            Ok(step) => step,
            Err(e) => {
                slot.send(Ahead::Failed(e));
                return;
            }
        };
        let mut ahead = PageAhead::decoded(step);
        next = ahead.step.next.clone();
        let link = link.clone();
        let fetching = async move {
            ahead.copies = link.fetch_ahead(&ahead.page).await;
            ahead
        };
        let fetching = fetching.instrument(tracing::Span::current());
        slot.send(Ahead::Page(AbortOnDropHandle::new(tokio::spawn(fetching))));
    }
}
