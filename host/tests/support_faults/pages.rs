//! OpenMRS atomfeed pages built from the fixture pages in `atomfeed-xml/`: their header and
//! entry markup (term order, the escaped feed-filter tag, CDATA content) is kept, while links,
//! entry ids and content are rewritten for the test's own feed. No `first` link and no
//! extensions, as the OpenMRS module publishes.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The origin the publisher puts in its page links: an internal name, as an OpenMRS behind a
/// reverse proxy does. A reader must rebase these links onto the URL it was configured with.
pub const LINK_ORIGIN: &str = "http://openmrs.internal:8080/openmrs/ws/atomfeed";

/// Which fixture an entry's markup comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Sync 2.0 publisher: JSON links in CDATA, action terms in varying order.
    JsonLinks,
    /// Older Bahmni/ICT4H publisher: a bare REST URL with the context path, no action term.
    BareUrl,
}

/// One feed entry.
#[derive(Debug, Clone)]
pub struct FeedEntry {
    pub id: String,
    /// The text inside the CDATA content.
    pub content: String,
    pub shape: Shape,
}

impl FeedEntry {
    /// An entry whose content is `{"rest": ..., "fhir": ...}` (links left out when `None`).
    pub fn json_links(id: &str, rest: Option<&str>, fhir: Option<&str>) -> Self {
        let mut links = serde_json::Map::new();
        if let Some(rest) = rest {
            links.insert("rest".into(), rest.into());
        }
        if let Some(fhir) = fhir {
            links.insert("fhir".into(), fhir.into());
        }
        Self {
            id: id.to_string(),
            content: serde_json::Value::Object(links).to_string(),
            shape: Shape::JsonLinks,
        }
    }

    /// An entry whose content is a bare REST URL.
    pub fn bare_url(id: &str, url: &str) -> Self {
        Self {
            id: id.to_string(),
            content: url.to_string(),
            shape: Shape::BareUrl,
        }
    }

    /// An entry of `shape` with arbitrary content text.
    pub fn raw_content(id: &str, content: &str, shape: Shape) -> Self {
        Self {
            id: id.to_string(),
            content: content.to_string(),
            shape,
        }
    }
}

/// The directory of the OpenMRS fixtures.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures/openmrs")
}

/// Reads a fixture file as text.
pub fn fixture(relative: &str) -> String {
    let path = fixtures().join(relative);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("fixture {} is unreadable: {e}", path.display()))
}

struct Template {
    /// The feed header without its `<link>` lines.
    header_lines: Vec<String>,
    /// The fixture's entries, used in turn.
    entries: Vec<String>,
}

fn template(shape: Shape) -> &'static Template {
    static JSON: OnceLock<Template> = OnceLock::new();
    static BARE: OnceLock<Template> = OnceLock::new();
    match shape {
        Shape::JsonLinks => {
            JSON.get_or_init(|| split(&fixture("atomfeed-xml/sync2-patient-recent.xml")))
        }
        Shape::BareUrl => {
            BARE.get_or_init(|| split(&fixture("atomfeed-xml/bahmni-patient-page.xml")))
        }
    }
}

fn split(page: &str) -> Template {
    let first_entry = page.find("<entry>").unwrap_or(page.len());
    let header_lines = page[..first_entry]
        .lines()
        .filter(|line| !line.trim_start().starts_with("<link "))
        .map(|line| line.trim_end().to_string())
        .filter(|line| !line.is_empty())
        .collect();
    let entries = page
        .match_indices("<entry>")
        .filter_map(|(start, _)| {
            let end = page[start..].find("</entry>")? + start + "</entry>".len();
            Some(page[start..end].to_string())
        })
        .collect();
    Template {
        header_lines,
        entries,
    }
}

/// Archive pages a feed of `len` entries has (at least one, possibly empty).
pub fn page_count(len: usize, page_size: usize) -> u64 {
    len.div_ceil(page_size).max(1) as u64
}

/// Page `number` of `newest`, requested as `requested` (`recent` or the number).
pub fn render_page(
    category: &str,
    entries: &[FeedEntry],
    number: u64,
    newest: u64,
    requested: &str,
    page_size: usize,
) -> String {
    let shape = entries.first().map_or(Shape::JsonLinks, |e| e.shape);
    let link = |rel: &str, page: &str| {
        format!(
            r#"  <link rel="{rel}" type="application/atom+xml" href="{LINK_ORIGIN}/{category}/{page}" />"#
        )
    };
    let mut out = String::new();
    for line in &template(shape).header_lines {
        let _ = writeln!(out, "{}", with_page_number(line, number));
        if line.trim_start().starts_with("<title>") {
            let _ = writeln!(out, "{}", link("self", requested));
            let _ = writeln!(out, "{}", link("via", &number.to_string()));
            if number > 1 {
                let _ = writeln!(out, "{}", link("prev-archive", &(number - 1).to_string()));
            }
            if number < newest {
                let _ = writeln!(out, "{}", link("next-archive", &(number + 1).to_string()));
            }
        }
    }
    let start = (number as usize - 1) * page_size;
    let end = (start + page_size).min(entries.len());
    for (index, entry) in entries.iter().enumerate().take(end).skip(start) {
        let _ = writeln!(out, "  {}", entry_xml(category, index, entry));
    }
    out.push_str("</feed>\n");
    out
}

/// The feed id line carries `+<page>`; other lines are kept.
fn with_page_number(line: &str, number: u64) -> String {
    match (line.find("<id>"), line.rfind('+'), line.find("</id>")) {
        (Some(_), Some(plus), Some(end)) if plus < end => {
            format!("{}+{number}{}", &line[..plus], &line[end..])
        }
        _ => line.to_string(),
    }
}

fn entry_xml(category: &str, index: usize, entry: &FeedEntry) -> String {
    let templates = &template(entry.shape).entries;
    let markup = &templates[index % templates.len()];
    let markup = replace_between(markup, "<id>", "</id>", &entry.id);
    let markup = replace_between(&markup, "<![CDATA[", "]]>", &entry.content);
    markup.replace(r#"term="patient""#, &format!(r#"term="{category}""#))
}

fn replace_between(text: &str, open: &str, close: &str, value: &str) -> String {
    let Some(start) = text.find(open).map(|i| i + open.len()) else {
        return text.to_string();
    };
    let Some(end) = text[start..].find(close).map(|i| i + start) else {
        return text.to_string();
    };
    format!("{}{value}{}", &text[..start], &text[end..])
}
