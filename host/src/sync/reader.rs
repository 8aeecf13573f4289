//! Reads an Atom feed from a marker, one page per step, with as few requests as the publisher
//! allows: a first sync starts at the oldest page directly, catch-up follows `next-archive`
//! asking for spans of archive pages, and waiting for news uses a conditional long-poll on
//! `recent` when the publisher offers it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sync_host_feed::{FeedError, ParsedEntry, ParsedPage, parse_page};
use sync_host_feed::{FirstSyncStep, Next, first_sync_step, read_page};

use crate::state::Marker;
use crate::sync::navigation::PagePath;
use crate::sync::transport::{FeedTransport, PageResponse, TransportError};
use crate::sync::walk::{MAX_PAGES_PER_RUN, PageWalk, Visit};

/// Entries a reader asks for when it reads an archive page: a sync-host publisher answers with
/// a span of consecutive archive pages up to this many (or its own, lower maximum), so a
/// catch-up costs one request and one commit per span instead of per page. Other publishers
/// ignore the parameter and answer with the page alone; either way the links go on from the
/// last page answered.
pub const CATCH_UP_PAGE: usize = 1000;

/// Why a feed page could not be used. The marker never moves past such a page.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("feed `{feed}`")]
    Transport {
        feed: String,
        source: TransportError,
    },
    #[error("feed `{feed}`: page {url} is malformed")]
    Malformed {
        feed: String,
        url: String,
        source: FeedError,
    },
    #[error("feed `{feed}`: feed cycle at {url}")]
    Cycle { feed: String, url: String },
    #[error("feed `{feed}`: no oldest page within {limit} pages")]
    TooManyPages { feed: String, limit: usize },
}

/// One page's worth of new entries, and where to go next.
#[derive(Debug, Clone)]
pub struct PageStep {
    /// The page the entries came from, relative to the feed base (`patient/3`).
    pub page_url: String,
    /// Entries after the marker, oldest first.
    pub entries: Vec<ParsedEntry>,
    /// The id and sequence of the page's last entry, which becomes the marker.
    pub last_entry: Option<(String, Option<u64>)>,
    /// The next page to read during a catch-up, `None` at the newest page.
    pub next: Option<String>,
    /// Entries still to read after this page, when the page numbering tells.
    pub remaining_hint: Option<u64>,
}

/// A reader of one feed (one category, or the combined feed) of one publisher.
pub struct FeedReader {
    name: String,
    paths: PagePath,
    transport: Arc<dyn FeedTransport>,
    long_poll: Option<Duration>,
    recent: Mutex<RecentState>,
}

#[derive(Default)]
struct RecentState {
    etag: Option<String>,
    newest_page: Option<u64>,
    /// The highest feed sequence seen on the newest page, for the lag in `status`.
    newest_sequence: Option<u64>,
}

impl FeedReader {
    /// A reader of feed `name` under `feed_base` (e.g. `http://parent:8080/ws/atomfeed`).
    pub fn new(
        name: &str,
        feed_base: &str,
        transport: Arc<dyn FeedTransport>,
        long_poll: Option<Duration>,
    ) -> Self {
        Self {
            name: name.to_string(),
            paths: PagePath::new(feed_base, name),
            transport,
            long_poll,
            recent: Mutex::default(),
        }
    }

    /// The feed's name, as markers know it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Reads the next page: `hint` (the previous step's `next`) when given, else the marker's
    /// page, else the oldest page. `walk` holds the pages this run has read; a page read
    /// twice is a cycle in the publisher's links and fails the run.
    pub async fn read_step(
        &self,
        marker: Option<&Marker>,
        hint: Option<String>,
        walk: &mut PageWalk,
    ) -> Result<PageStep, ReadError> {
        let (relative, page, after) = match (hint, marker) {
            (Some(next), _) => {
                self.visit(walk, &next)?;
                let page = self.fetch(&next).await?;
                (next, page, None)
            }
            (
                None,
                Some(Marker {
                    page: Some(at),
                    entry_id,
                    ..
                }),
            ) => {
                self.visit(walk, at)?;
                let page = self.fetch(at).await?;
                (at.clone(), page, Some(entry_id.as_str()))
            }
            (None, _) => self.oldest_page().await?,
        };
        // The oldest page was found by a walk of its own; it counts as read in this one.
        walk.alias(&relative);
        let page_url = page
            .links
            .via
            .as_deref()
            .and_then(|via| self.paths.relative(via))
            .unwrap_or(relative.clone());
        if page_url != relative {
            // The page calls itself by another name: a page already read under that name
            // closes a cycle just as well.
            if walk.has_seen(&page_url) {
                return Err(self.cycle(&page_url));
            }
            walk.alias(&page_url);
        }
        let reading = read_page(after, &page.entry_ids(), &page.links);
        let next = match reading.next {
            Next::Fetch(url) => self.paths.relative(&url),
            Next::CaughtUp => None,
        };
        if !reading.duplicate_ids.is_empty() {
            tracing::warn!(feed = %self.name, page = %page_url, duplicates = ?reading.duplicate_ids,
                "entry ids repeated on one page; each is delivered");
        }
        let remaining_hint = self.remaining_after(&relative, &page_url, page.entries.len());
        if next.is_none() {
            self.remember_newest_sequence(&page);
        }
        let entries: Vec<ParsedEntry> = page
            .entries
            .into_iter()
            .skip(reading.new_entries.start)
            .collect();
        let last_entry = entries.iter().rev().find_map(|e| {
            let sequence = e.result.as_ref().ok().and_then(|v| v.entry.ext.sequence);
            e.id.clone().map(|id| (id, sequence))
        });
        Ok(PageStep {
            page_url,
            entries,
            last_entry,
            next,
            remaining_hint,
        })
    }

    /// Records the page about to be read, failing on a cycle or an endless walk.
    fn visit(&self, walk: &mut PageWalk, relative: &str) -> Result<(), ReadError> {
        match walk.visit(relative) {
            Visit::New => Ok(()),
            Visit::Repeated => Err(self.cycle(relative)),
            Visit::OverLimit => Err(ReadError::TooManyPages {
                feed: self.name.clone(),
                limit: MAX_PAGES_PER_RUN,
            }),
        }
    }

    fn cycle(&self, relative: &str) -> ReadError {
        ReadError::Cycle {
            feed: self.name.clone(),
            url: self.paths.absolute(relative),
        }
    }

    /// First sync: the `first` link, or archive page 1 of the numbered layout, or (last
    /// resort) a walk back along `prev-archive`, one page at a time. The walk keeps its own
    /// visited pages: the catch-up that follows comes forward through them again.
    async fn oldest_page(&self) -> Result<(String, ParsedPage, Option<&'static str>), ReadError> {
        let mut walk = PageWalk::default();
        let mut relative = self.paths.recent().to_string();
        self.visit(&mut walk, &relative)?;
        let mut page = self.fetch(&relative).await?;
        self.remember_newest(&page);
        loop {
            if let Some(via) = page
                .links
                .via
                .as_deref()
                .and_then(|v| self.paths.relative(v))
            {
                walk.alias(&via);
            }
            let FirstSyncStep::Fetch { url, via } = first_sync_step(&page.links) else {
                return Ok((relative, page, None));
            };
            let Some(next) = self.paths.relative(&url).filter(|n| *n != relative) else {
                return Ok((relative, page, None));
            };
            tracing::debug!(feed = %self.name, page = %next, route = ?via, "first sync: moving to an older page");
            self.visit(&mut walk, &next)?;
            page = self.fetch(&next).await?;
            relative = next;
        }
    }

    fn remember_newest(&self, recent: &ParsedPage) {
        let number = recent
            .links
            .via
            .as_deref()
            .and_then(|via| self.paths.relative(via))
            .and_then(|rel| PagePath::page_number(&rel));
        if let Ok(mut state) = self.recent.lock() {
            state.newest_page = number;
        }
    }

    fn remember_newest_sequence(&self, page: &ParsedPage) {
        let newest = page
            .entries
            .iter()
            .filter_map(|e| e.result.as_ref().ok()?.entry.ext.sequence)
            .max();
        if let (Some(newest), Ok(mut state)) = (newest, self.recent.lock()) {
            state.newest_sequence = Some(state.newest_sequence.map_or(newest, |s| s.max(newest)));
        }
    }

    /// The highest sequence number this reader has seen on the feed's newest page.
    pub fn newest_sequence(&self) -> Option<u64> {
        self.recent.lock().ok()?.newest_sequence
    }

    /// Entries left after the page read as `requested` that calls itself `page_url` (its last
    /// page, when the answer was a span), estimated from the entries per page it held.
    fn remaining_after(&self, requested: &str, page_url: &str, entries: usize) -> Option<u64> {
        let last = PagePath::page_number(page_url)?;
        let first = PagePath::page_number(requested).unwrap_or(last).min(last);
        let per_page = (entries as u64).div_ceil(last - first + 1);
        let newest = self.recent.lock().ok()?.newest_page?;
        Some(newest.saturating_sub(last) * per_page)
    }

    /// Reads a page; an archive page is asked for as the start of a span.
    async fn fetch(&self, relative: &str) -> Result<ParsedPage, ReadError> {
        let url = self.paths.absolute(relative);
        let url = if relative == self.paths.recent() {
            url
        } else {
            format!("{url}?count={CATCH_UP_PAGE}")
        };
        let response =
            self.transport
                .get(&url, None)
                .await
                .map_err(|source| ReadError::Transport {
                    feed: self.name.clone(),
                    source,
                })?;
        let PageResponse::Page { body, .. } = response else {
            // An unconditional GET never answers 304; treat it as an empty page.
            return parse(
                &self.name,
                &url,
                "<feed xmlns=\"http://www.w3.org/2005/Atom\"/>",
            );
        };
        parse(&self.name, &url, &body)
    }

    /// Waits for the feed to change: a long-poll on `recent` where the publisher supports it
    /// (it answers with an ETag), otherwise simply `max_wait`. True when something may be new.
    pub async fn wait_for_change(&self, max_wait: Duration) -> bool {
        let Some(long_poll) = self.long_poll else {
            tokio::time::sleep(max_wait).await;
            return true;
        };
        let etag = self.recent.lock().ok().and_then(|s| s.etag.clone());
        let wait = long_poll.min(max_wait).as_secs().max(1);
        let url = format!("{}?wait={wait}", self.paths.absolute(self.paths.recent()));
        let started = Instant::now();
        // What is left of `max_wait`, slept when the publisher did not hold the wait for us.
        let wait_out = || tokio::time::sleep(max_wait.saturating_sub(started.elapsed()));
        let at_once = || started.elapsed() < Duration::from_secs(1);
        match self.transport.get(&url, etag.as_deref()).await {
            Ok(PageResponse::NotModified) => {
                // A parent at its bound of long-polls answers at once rather than hold the
                // wait; asking again at once would turn the wait into a busy loop.
                if at_once() {
                    wait_out().await;
                }
                false
            }
            Ok(PageResponse::Page { etag: new_etag, .. }) => {
                let unchanged = new_etag.is_some() && new_etag == etag;
                let supported = new_etag.is_some();
                if let Ok(mut state) = self.recent.lock() {
                    state.etag = new_etag;
                }
                if !supported || (unchanged && at_once()) {
                    wait_out().await;
                }
                true
            }
            Err(e) => {
                tracing::debug!(feed = %self.name, error = %e, "long-poll failed; waiting");
                wait_out().await;
                true
            }
        }
    }
}

fn parse(feed: &str, url: &str, body: &str) -> Result<ParsedPage, ReadError> {
    parse_page(body).map_err(|source| ReadError::Malformed {
        feed: feed.to_string(),
        url: url.to_string(),
        source,
    })
}
