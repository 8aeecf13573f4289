//! Feed page arithmetic, ETags and long-poll parameters: which positions a page holds, whether
//! it is an immutable archive page, and its links. Pure, no I/O.

use std::time::Duration;

use sync_host_feed::PageLinks;

use crate::api::error::ApiError;

/// Which page a request names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageRequest {
    /// `{category}/recent`: the newest, partial page.
    Recent,
    /// `{category}/{n}`, n >= 1.
    Number(u64),
}

/// A page to serve, worked out from the category's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PagePlan {
    /// The page number (1-based).
    pub number: u64,
    /// Position of the page's first entry in the category's log (0-based).
    pub start: u64,
    /// Entries on the page.
    pub len: usize,
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
        is_archive: number < recent,
        recent_number: recent,
    })
}

/// The ETag of a page. Archive pages never change, so their tag depends only on (category,
/// number, size); the newest page's tag also depends on how many entries it holds.
pub fn page_etag(category: &str, plan: &PagePlan, page_size: usize) -> String {
    if plan.is_archive {
        format!("\"{category}-{}-{page_size}\"", plan.number)
    } else {
        format!("W/\"{category}-{}-{page_size}-{}\"", plan.number, plan.len)
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
        PageRequest::Number(number) => page(number),
    };
    PageLinks {
        self_: Some(self_),
        via: Some(page(plan.number)),
        first: Some(page(1)),
        prev_archive: (plan.number > 1).then(|| page(plan.number - 1)),
        next_archive: (plan.number < plan.recent_number).then(|| page(plan.number + 1)),
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
            page_etag("all", &archive, 100),
            page_etag("all", &later, 100)
        );
        let recent = plan_page(PageRequest::Recent, 150, 100).unwrap();
        let grown = plan_page(PageRequest::Recent, 151, 100).unwrap();
        assert_ne!(
            page_etag("all", &recent, 100),
            page_etag("all", &grown, 100)
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
    }
}
