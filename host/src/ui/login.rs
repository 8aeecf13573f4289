//! Logging in and out. The admin token is sent once, in the body of the login form, and
//! never appears in a URL or a page; the login form itself is protected by a value that must
//! come back both in its cookie and in the form.

use axum::Form;
use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use http::request::Parts;
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;
use subtle::ConstantTimeEq;
use sync_host_store::auth::Scope;

use super::Ui;
use super::session::{LIFETIME, LOGIN_COOKIE, SESSION_COOKIE, cookie, over_tls, set_cookie};

/// How long the login form's value is good for.
const LOGIN_FORM_LIFETIME: std::time::Duration = std::time::Duration::from_secs(1800);

fn login_page(node: &str, form_value: &str, problem: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "Log in · " (node) " · sync-host" }
                link rel="stylesheet" href="/ui/assets/app.css";
            }
            body {
                header { span.node { "sync-host · " (node) } }
                main {
                    h1 { "Log in" }
                    @if let Some(problem) = problem { p.error { (problem) } }
                    form method="post" action="/ui/login" {
                        input type="hidden" name="login_csrf" value=(form_value);
                        label { "Admin token " input type="password" name="token" autocomplete="off" required; }
                        " "
                        button type="submit" { "Log in" }
                    }
                }
            }
        }
    }
}

/// `GET /ui/login`.
pub async fn form(State(ui): State<Ui>, parts: Parts) -> Response {
    fresh_form(&ui, &parts, StatusCode::OK, None)
}

fn fresh_form(ui: &Ui, parts: &Parts, status: StatusCode, problem: Option<&str>) -> Response {
    let value = crate::config::token::generate();
    let cookie = set_cookie(LOGIN_COOKIE, &value, LOGIN_FORM_LIFETIME, over_tls(parts));
    let mut response = (status, login_page(&ui.node.node_id, &value, problem)).into_response();
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

#[derive(Deserialize)]
pub struct Login {
    token: String,
    login_csrf: String,
}

/// `POST /ui/login`: an admin token opens a session.
pub async fn submit(State(ui): State<Ui>, parts: Parts, Form(login): Form<Login>) -> Response {
    let expected = cookie(&parts.headers, LOGIN_COOKIE).unwrap_or_default();
    let form_ok =
        !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(login.login_csrf.as_bytes()));
    if !form_ok {
        let problem = "The login form expired or came from elsewhere; log in again.";
        return fresh_form(&ui, &parts, StatusCode::FORBIDDEN, Some(problem));
    }
    let client = ui.clients.authenticate(login.token.trim());
    let Some(client) = client.filter(|c| c.has_scope(Scope::Admin)) else {
        tracing::warn!("dashboard login refused");
        let problem = "That token is not an admin token of this node.";
        return fresh_form(&ui, &parts, StatusCode::UNAUTHORIZED, Some(problem));
    };
    let id = ui.sessions.open(&client.name);
    tracing::info!(operator = %client.name, "dashboard login");
    let tls = over_tls(&parts);
    let mut response = Redirect::to("/ui/network").into_response();
    let cookies = [
        set_cookie(SESSION_COOKIE, &id, LIFETIME, tls),
        set_cookie(LOGIN_COOKIE, "", std::time::Duration::ZERO, tls),
    ];
    for value in cookies {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

/// `POST /ui/logout` (CSRF-checked like every form).
pub async fn logout(State(ui): State<Ui>, parts: Parts) -> Response {
    if let Some(id) = cookie(&parts.headers, SESSION_COOKIE) {
        ui.sessions.close(id);
    }
    let mut response = Redirect::to("/ui/login").into_response();
    let clear = set_cookie(
        SESSION_COOKIE,
        "",
        std::time::Duration::ZERO,
        over_tls(&parts),
    );
    if let Ok(clear) = HeaderValue::from_str(&clear) {
        response.headers_mut().append(header::SET_COOKIE, clear);
    }
    response
}
