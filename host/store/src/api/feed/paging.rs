//! Feed page arithmetic, ETags and long-poll parameters: which positions a page holds, whether
//! it is an immutable archive page, and its links. Pure, no I/O.
//!
//! A catch-up may ask for an archive page with `?count=N`: the answer is that page and the
//! archive pages after it, up to N entries (capped by the node's `catch_up_page_max`), as one
//! response. The page layout stays the one `page_size` makes: the span's `via` names its last
//! page and its `next-archive` the page after that, so a reader's marker always names an
//! ordinary page and readers that never ask for spans see nothing different.

use std::time::Duration;

use sync_host_feed::PageLinks;

use crate::api::error::ApiError;

/// Which page a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PageRequest {
    /// `{category}/recent`: the newest, partial page.
    Recent,
    /// `{category}/{n}`, n >= 1.
    Number(u64),
}

/// A page to serve, worked out from the category's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PagePlan {
    /// The page number (1-based).
    pub number: u64,
    /// Position of the page's first entry in the category's log (0-based).
    pub start: u64,
    /// Entries on the page.
    pub len: usize,
    /// The last page this answer covers: `number` itself, or a later archive page when the
    /// answer is a span of archives.
    pub last_number: u64,
    /// Full pages are archives: they never change again.
    pub is_archive: bool,
    /// The number of the newest page (the one `recent` serves).
    pub recent_number: u64,
}

/// The number of the newest page: the first page that is not full. A page becomes an archive
/// exactly when it fills, so `recent` is never a full page (it may be empty).
pub fn recent_number(count: u64, page_size: usize) -> u64 {
    count / page_size as u64 + 1
}

/// The page `request` names in a log of `count` entries, `None` when it does not exist yet.
pub fn plan_page(request: PageRequest, count: u64, page_size: usize) -> Option<PagePlan> {
    let size = page_size as u64;
    let recent = recent_number(count, page_size);
    let number = match request {
        PageRequest::Recent => recent,
        PageRequest::Number(number) if (1..=recent).contains(&number) => number,
        PageRequest::Number(_) => return None,
    };
    let start = (number - 1) * size;
    let len = count.saturating_sub(start).min(size);
    Some(PagePlan {
        number,
        start,
        len: len as usize,
        last_number: number,
        is_archive: number < recent,
        recent_number: recent,
    })
}

/// `plan` widened to the archive pages after it, up to `wanted` entries (at most `max`). Only
/// archives are joined, so a span never changes; the newest page is never part of one, and
/// a plan of the newest page comes back as it was.
pub fn widen_to_span(plan: PagePlan, wanted: usize, max: usize, page_size: usize) -> PagePlan {
    if !plan.is_archive {
        return plan;
    }
    let pages = (wanted.min(max) / page_size).max(1) as u64;
    let last_number = (plan.number + pages - 1).min(plan.recent_number - 1);
    PagePlan {
        len: ((last_number - plan.number + 1) as usize) * page_size,
        last_number,
        ..plan
    }
}

/// The entries a `?count=` asks for: a whole number from 1.
pub fn span_count(count: Option<&str>) -> Result<Option<usize>, ApiError> {
    let Some(text) = count else {
        return Ok(None);
    };
    match text.parse::<usize>() {
        Ok(count) if count >= 1 => Ok(Some(count)),
        _ => Err(ApiError::Invalid(format!(
            "count {text:?} is not a whole number of entries from 1"
        ))),
    }
}

/// The ETag of a page of the store opened as `instance_id`. Archive pages never change, so
/// their tag depends only on the store's opening, the category, the number and the size; the
/// newest page's tag also depends on how many entries it holds. The instance id keeps another
/// store's page of the same name, or a restored copy's, from ever carrying the same tag.
pub fn page_etag(instance_id: &str, category: &str, plan: &PagePlan, page_size: usize) -> String {
    if plan.last_number > plan.number {
        format!(
            "\"{instance_id}-{category}-{}-{page_size}-to-{}\"",
            plan.number, plan.last_number
        )
    } else if plan.is_archive {
        format!("\"{instance_id}-{category}-{}-{page_size}\"", plan.number)
    } else {
        format!(
            "W/\"{instance_id}-{category}-{}-{page_size}-{}\"",
            plan.number, plan.len
        )
    }
}

/// The `Cache-Control` of a page: archives may be cached for good, the newest page not at all.
pub fn cache_control(plan: &PagePlan) -> &'static str {
    if plan.is_archive {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    }
}

/// The paging links of `plan`, absolute under `category_url` (`.../ws/atomfeed/patient`).
pub fn page_links(category_url: &str, request: PageRequest, plan: &PagePlan) -> PageLinks {
    let page = |number: u64| format!("{category_url}/{number}");
    let self_ = match request {
        PageRequest::Recent => format!("{category_url}/recent"),
        PageRequest::Number(number) if plan.last_number > number => {
            format!("{}?count={}", page(number), plan.len)
        }
        PageRequest::Number(number) => page(number),
    };
    PageLinks {
        self_: Some(self_),
        via: Some(page(plan.last_number)),
        first: Some(page(1)),
        prev_archive: (plan.number > 1).then(|| page(plan.number - 1)),
        next_archive: (plan.last_number < plan.recent_number).then(|| page(plan.last_number + 1)),
    }
}

/// How long a `recent` request may wait for a change: `?wait=N` seconds capped by `max`.
pub fn wait_duration(wait: Option<&str>, max: Duration) -> Result<Option<Duration>, ApiError> {
    let Some(text) = wait else {
        return Ok(None);
    };
    let seconds: u64 = text.parse().map_err(|_| {
        ApiError::Invalid(format!("wait {text:?} is not a whole number of seconds"))
    })?;
    Ok(Some(Duration::from_secs(seconds).min(max)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_split_the_log() {
        let last = plan_page(PageRequest::Recent, 1050, 100).unwrap();
        assert_eq!(
            (last.number, last.start, last.len, last.is_archive),
            (11, 1000, 50, false)
        );
        let tenth = plan_page(PageRequest::Number(10), 1050, 100).unwrap();
        assert_eq!((tenth.start, tenth.len, tenth.is_archive), (900, 100, true));
        assert_eq!(plan_page(PageRequest::Number(12), 1050, 100), None);
        assert_eq!(plan_page(PageRequest::Number(0), 1050, 100), None);
        let empty = plan_page(PageRequest::Recent, 0, 100).unwrap();
        assert_eq!((empty.number, empty.len), (1, 0));
        let exact = plan_page(PageRequest::Recent, 200, 100).unwrap();
        assert_eq!((exact.number, exact.len), (3, 0));
    }

    #[test]
    fn archive_tags_are_stable_and_recent_tags_move() {
        let archive = plan_page(PageRequest::Number(1), 150, 100).unwrap();
        let later = plan_page(PageRequest::Number(1), 900, 100).unwrap();
        assert_eq!(
            page_etag("s1", "all", &archive, 100),
            page_etag("s1", "all", &later, 100)
        );
        let recent = plan_page(PageRequest::Recent, 150, 100).unwrap();
        let grown = plan_page(PageRequest::Recent, 151, 100).unwrap();
        assert_ne!(
            page_etag("s1", "all", &recent, 100),
            page_etag("s1", "all", &grown, 100)
        );
    }

    #[test]
    fn another_store_never_tags_its_page_alike() {
        let archive = plan_page(PageRequest::Number(1), 250, 100).unwrap();
        assert_ne!(
            page_etag("s1", "all", &archive, 100),
            page_etag("s2", "all", &archive, 100)
        );
    }

    #[test]
    fn links_chain_the_pages() {
        let plan = plan_page(PageRequest::Number(2), 350, 100).unwrap();
        let links = page_links("/f/patient", PageRequest::Number(2), &plan);
        assert_eq!(links.prev_archive.as_deref(), Some("/f/patient/1"));
        assert_eq!(links.next_archive.as_deref(), Some("/f/patient/3"));
        let recent = plan_page(PageRequest::Recent, 350, 100).unwrap();
        let links = page_links("/f/patient", PageRequest::Recent, &recent);
        assert_eq!(links.self_.as_deref(), Some("/f/patient/recent"));
        assert_eq!(links.via.as_deref(), Some("/f/patient/4"));
        assert_eq!(links.next_archive, None);
    }

    #[test]
    fn a_span_joins_the_archives_after_its_first_page_and_stops_before_the_newest() {
        // 1050 entries in pages of 100: archives 1..=10, the newest page 11.
        let third = plan_page(PageRequest::Number(3), 1050, 100).unwrap();
        let span = widen_to_span(third, 500, 1000, 100);
        assert_eq!((span.start, span.len, span.last_number), (200, 500, 7));
        let capped = widen_to_span(third, 5000, 300, 100);
        assert_eq!((capped.len, capped.last_number), (300, 5));
        let to_the_end = widen_to_span(third, 5000, 5000, 100);
        assert_eq!((to_the_end.len, to_the_end.last_number), (800, 10));
        let recent = plan_page(PageRequest::Recent, 1050, 100).unwrap();
        assert_eq!(widen_to_span(recent, 1000, 1000, 100), recent);
        let small = widen_to_span(third, 30, 1000, 100);
        assert_eq!(small, third);
    }

    #[test]
    fn a_span_links_on_from_its_last_page_and_has_its_own_tag() {
        let third = plan_page(PageRequest::Number(3), 1050, 100).unwrap();
        let span = widen_to_span(third, 500, 1000, 100);
        let links = page_links("/f/all", PageRequest::Number(3), &span);
        assert_eq!(links.self_.as_deref(), Some("/f/all/3?count=500"));
        assert_eq!(links.via.as_deref(), Some("/f/all/7"));
        assert_eq!(links.prev_archive.as_deref(), Some("/f/all/2"));
        assert_eq!(links.next_archive.as_deref(), Some("/f/all/8"));
        assert_ne!(
            page_etag("s1", "all", &span, 100),
            page_etag("s1", "all", &third, 100)
        );
        assert_eq!(cache_control(&span), cache_control(&third));
    }

    #[test]
    fn counts_are_whole_numbers_from_one() {
        assert_eq!(span_count(None).unwrap(), None);
        assert_eq!(span_count(Some("1000")).unwrap(), Some(1000));
        assert!(span_count(Some("0")).is_err());
        assert!(span_count(Some("-5")).is_err());
        assert!(span_count(Some("many")).is_err());
    }

    #[test]
    fn waits_are_capped() {
        let max = Duration::from_secs(30);
        assert_eq!(wait_duration(Some("90"), max).unwrap(), Some(max));
        assert_eq!(wait_duration(None, max).unwrap(), None);
        assert!(wait_duration(Some("soon"), max).is_err());
    }

    proptest::proptest! {
        /// Pages 1..=recent cover every position exactly once, in order, and only the newest
        /// page is not an archive.
        #[test]
        fn pages_partition_the_log(count in 0u64..5000, size in 1usize..300) {
            let recent = plan_page(PageRequest::Recent, count, size).unwrap();
            let mut next_start = 0;
            for number in 1..=recent.recent_number {
                let plan = plan_page(PageRequest::Number(number), count, size).unwrap();
                proptest::prop_assert_eq!(plan.start, next_start);
                proptest::prop_assert_eq!(plan.is_archive, number < recent.number);
                proptest::prop_assert_eq!(plan.is_archive, plan.len == size);
                next_start += plan.len as u64;
            }
            proptest::prop_assert_eq!(next_start, count);
            proptest::prop_assert!(plan_page(PageRequest::Number(recent.number + 1), count, size).is_none());
        }

        /// Following spans from page 1 covers every position exactly once, in order, and
        /// ends at the newest page.
        #[test]
        fn spans_partition_the_log(count in 0u64..5000, size in 1usize..300, wanted in 1usize..2000) {
            let mut number = 1;
            let mut next_start = 0;
            loop {
                let plan = plan_page(PageRequest::Number(number), count, size).unwrap();
                let span = widen_to_span(plan, wanted, 1000, size);
                proptest::prop_assert_eq!(span.start, next_start);
                proptest::prop_assert!(span.len <= wanted.min(1000).max(size));
                next_start += span.len as u64;
                if span.last_number == span.recent_number {
                    break;
                }
                number = span.last_number + 1;
            }
            proptest::prop_assert_eq!(next_start, count);
        }
    }
}
