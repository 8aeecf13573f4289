//! Routing: which resource client handles an event, by resource type or category, with a
//! fallback, and the `rest` client for events that carry no `fhir` link.

use std::collections::BTreeMap;
use std::sync::Arc;

use sync_host_runtime::{Event, ResourceClient};

/// A client that can take an event, as the route table names it.
#[derive(Clone)]
pub struct Route {
    /// The plugin's name, for the audit and for grouping.
    pub client_name: String,
    /// The client itself.
    pub client: Arc<dyn ResourceClient>,
}

/// The route table of one node.
#[derive(Clone, Default)]
pub struct Routes {
    /// Keyed by lower-cased resource type or category.
    by_name: BTreeMap<String, Route>,
    /// Used when nothing else matches and the event has a link for it.
    fallback: Option<Route>,
    /// Used for events with only a `rest` link when nothing else matches.
    rest: Option<Route>,
}

impl Routes {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// Routes events whose resource type or category is `name` (case-insensitive) to `route`.
    pub fn add(&mut self, name: &str, route: Route) {
        self.by_name.insert(name.to_ascii_lowercase(), route);
    }

    /// The route for events that match no name.
    pub fn set_fallback(&mut self, route: Route) {
        self.fallback = Some(route);
    }

    /// The client for events that carry only a `rest` link.
    pub fn set_rest(&mut self, route: Route) {
        self.rest = Some(route);
    }

    /// Picks the route for `event`: an explicit entry for its resource type, then for its
    /// category; then the REST client when the event has no `fhir` link (older OpenMRS feeds
    /// link only the REST representation); then the fallback.
    pub fn route_for(&self, event: &Event) -> Option<&Route> {
        let by_type = self.by_name.get(&event.resource_type.to_ascii_lowercase());
        let by_category = || self.by_name.get(&event.category.to_ascii_lowercase());
        if let Some(route) = by_type.or_else(by_category) {
            return Some(route);
        }
        let has_fhir = event.links.iter().any(|l| l.client == "fhir");
        let has_rest = event.links.iter().any(|l| l.client == "rest");
        if !has_fhir
            && has_rest
            && let Some(rest) = &self.rest
        {
            return Some(rest);
        }
        self.fallback.as_ref()
    }
}

impl Routes {
    /// The event as its route's client sees it. An OpenMRS entry links both forms of a
    /// resource, and the feed names it by the FHIR type (`Patient`); a REST client must use the
    /// resource name of the `rest` link (`patient`) instead, or it reads and stores the
    /// document under a path OpenMRS does not serve, and republishes that wrong link.
    pub fn for_client(&self, mut event: Event) -> Event {
        let Some(rest) = &self.rest else {
            return event;
        };
        let routed_to_rest = self
            .route_for(&event)
            .is_some_and(|route| route.client_name == rest.client_name);
        if !routed_to_rest {
            return event;
        }
        let named = event
            .links
            .iter()
            .find(|link| link.client == "rest")
            .and_then(|link| sync_host_feed::resource_from_href("rest", &link.href));
        if let Some((name, id)) = named
            && id == event.resource_id
        {
            event.resource_type = name;
        }
        event
    }
}

/// Events grouped by the client that handles them, each group in feed order.
pub struct RouteGroup {
    pub route: Route,
    pub events: Vec<Event>,
}

/// Groups `events` by route; events with no route are returned separately.
pub fn group_by_route(routes: &Routes, events: Vec<Event>) -> (Vec<RouteGroup>, Vec<Event>) {
    let mut groups: Vec<RouteGroup> = Vec::new();
    let mut unrouted = Vec::new();
    for event in events {
        let Some(route) = routes.route_for(&event) else {
            unrouted.push(event);
            continue;
        };
        match groups
            .iter_mut()
            .find(|g| g.route.client_name == route.client_name)
        {
            Some(group) => group.events.push(event),
            None => groups.push(RouteGroup {
                route: route.clone(),
                events: vec![event],
            }),
        }
    }
    (groups, unrouted)
}
