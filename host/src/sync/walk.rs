//! The pages one walk over a feed has read. A publisher's paging links are input like any
//! other: a page met twice in one walk is a cycle (of any length, through `next-archive`,
//! `prev-archive` or `first`), and no walk reads more than a fixed number of pages. Pure.

use std::collections::HashSet;
use std::hash::{DefaultHasher, Hash, Hasher};

/// The most pages one run reads from one feed, and the most a first sync walks back to find
/// the oldest page. A catch-up that needs more goes on in the next run from its marker.
pub const MAX_PAGES_PER_RUN: usize = 10_000;

/// What a walk makes of the next page it is about to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visit {
    /// Not read before in this walk.
    New,
    /// Already read in this walk: the links form a cycle.
    Repeated,
    /// The walk has read its [`MAX_PAGES_PER_RUN`] pages.
    OverLimit,
}

/// The pages read so far, kept as hashes of their addresses so that long URLs a publisher
/// chooses cost eight bytes each.
#[derive(Debug, Default)]
pub struct PageWalk {
    seen: HashSet<u64>,
}

impl PageWalk {
    /// Records that `page` (an address relative to the feed base) is read next.
    pub fn visit(&mut self, page: &str) -> Visit {
        if self.seen.len() >= MAX_PAGES_PER_RUN {
            return Visit::OverLimit;
        }
        if self.seen.insert(key(page)) {
            Visit::New
        } else {
            Visit::Repeated
        }
    }

    /// Records `page` as read without judging it: a second name the publisher gives a page
    /// just read (its `via`).
    pub fn alias(&mut self, page: &str) {
        self.seen.insert(key(page));
    }

    /// True when `page` was read in this walk.
    pub fn has_seen(&self, page: &str) -> bool {
        self.seen.contains(&key(page))
    }

    /// True when the walk may not read another page.
    pub fn is_full(&self) -> bool {
        self.seen.len() >= MAX_PAGES_PER_RUN
    }
}

fn key(page: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    page.hash(&mut hasher);
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_met_twice_is_a_cycle() {
        let mut walk = PageWalk::default();
        for page in ["p/1", "p/2", "p/3"] {
            assert_eq!(walk.visit(page), Visit::New);
        }
        assert_eq!(walk.visit("p/1"), Visit::Repeated);
        walk.alias("p/recent");
        assert!(walk.has_seen("p/recent"));
        assert_eq!(walk.visit("p/recent"), Visit::Repeated);
    }

    #[test]
    fn a_walk_is_bounded() {
        let mut walk = PageWalk::default();
        for n in 0..MAX_PAGES_PER_RUN {
            assert_eq!(walk.visit(&format!("p/{n}")), Visit::New);
        }
        assert!(walk.is_full());
        assert_eq!(walk.visit("p/new"), Visit::OverLimit);
    }
}
