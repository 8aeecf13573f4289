//! The frame every dashboard page shares (navigation, the logout form, the stylesheet and the
//! script, both embedded in the binary), and the small pieces pages reuse.

use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use maud::{DOCTYPE, Markup, html};

use super::session::Session;
use crate::audit::Timestamp;

const STYLESHEET: &str = r#"
body { font-family: system-ui, sans-serif; margin: 0; color: #1d232a; background: #f6f7f9; }
header { background: #1f4e79; color: #fff; padding: .6rem 1rem; display: flex; gap: 1.2rem; align-items: center; }
header a { color: #fff; text-decoration: none; }
header .node { font-weight: 600; margin-right: auto; }
main { padding: 1rem 1.4rem; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #d5d9de; padding: .3rem .6rem; text-align: left; vertical-align: top; }
th { background: #eef1f4; }
.ok { color: #1a7f37; } .stale, .failed, .refused { color: #b3261e; font-weight: 600; } .never { color: #6b7280; }
.sides { display: flex; gap: 1rem; flex-wrap: wrap; }
.side { flex: 1; min-width: 20rem; }
pre { background: #fff; border: 1px solid #d5d9de; padding: .5rem; overflow-x: auto; }
pre .diff { background: #fff3c4; display: block; }
form.inline { display: inline; }
textarea { width: 100%; min-height: 14rem; font-family: monospace; }
.error { color: #b3261e; }
.notice { background: #e7f3ff; border: 1px solid #9ac7f5; padding: .4rem .6rem; }
"#;

const SCRIPT: &str = r#"
// A merged body is checked before it is sent: it must parse as JSON.
document.addEventListener('submit', function (event) {
  var field = event.target.querySelector('textarea[name=body]');
  if (!field) { return; }
  try { JSON.parse(field.value); }
  catch (e) {
    event.preventDefault();
    var out = event.target.querySelector('.body-error');
    if (out) { out.textContent = 'The merged body is not valid JSON: ' + e.message; }
  }
});
"#;

/// `GET /ui/assets/app.css`.
pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        STYLESHEET,
    )
        .into_response()
}

/// `GET /ui/assets/app.js`.
pub async fn script() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response()
}

/// A whole page for the logged-in `session`, on node `node`.
pub fn page(node: &str, session: &Session, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { (title) " · " (node) " · sync-host" }
                link rel="stylesheet" href="/ui/assets/app.css";
                script src="/ui/assets/app.js" defer {}
            }
            body {
                header {
                    span.node { "sync-host · " (node) }
                    a href="/ui/network" { "Network" }
                    a href="/ui/audit" { "Audit" }
                    a href="/ui/conflicts" { "Conflicts" }
                    a href="/ui/dead-letters" { "Dead letters" }
                    a href="/ui/plugins" { "Plugins" }
                    span { (session.operator) }
                    form.inline method="post" action="/ui/logout" {
                        (csrf_field(session))
                        button type="submit" { "Log out" }
                    }
                }
                main { h1 { (title) } (body) }
            }
        }
    }
}

/// The hidden field every state-changing form carries.
pub fn csrf_field(session: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A time as the pages show it.
pub fn when(at: Option<Timestamp>) -> String {
    at.map_or("-".into(), |t| t.to_rfc3339())
}

/// A page answering with `status` and a message.
pub fn message(status: StatusCode, node: &str, session: &Session, text: &str) -> Response {
    let body = html! { p.error { (text) } p { a href="/ui/network" { "Back to the network" } } };
    (status, page(node, session, "Not done", body)).into_response()
}
