//! The dashboard through the router: login and the session cookie, every
//! page for acting and read-only tokens, every action with its CSRF token,
//! 404s, and HTML escaping of everything users and workers put in.

mod support;

use axum::body::Body;
use axum::http::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use serde_json::json;
use support::*;

fn ui_request(
    method: Method,
    path: &str,
    token: Option<&str>,
    form: Option<String>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(path);
    if let Some(token) = token {
        builder = builder.header(COOKIE, format!("other=1; tasker_ui_token={token}"));
    }
    match form {
        Some(form) => builder
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(form))
            .unwrap(),
        None => builder.body(Body::empty()).unwrap(),
    }
}

async fn page(app: &TestApp, path: &str, token: &str) -> Reply {
    app.send(ui_request(Method::GET, path, Some(token), None))
        .await
}

async fn submit(app: &TestApp, path: &str, token: &str, form: &str) -> Reply {
    app.send(ui_request(
        Method::POST,
        path,
        Some(token),
        Some(form.to_owned()),
    ))
    .await
}

/// The CSRF token in a page's forms.
fn csrf(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).expect("a form with a csrf token") + marker.len();
    html[start..start + 32].to_owned()
}

fn location(reply: &Reply) -> String {
    reply.headers[LOCATION].to_str().unwrap().to_owned()
}

const ACTIONS: [&str; 6] = [
    "/retry\"",
    "/resolve\"",
    "/cancel\"",
    "class=\"action",
    "Trigger now",
    "Retry selected",
];

/// A task whose first step failed for good, with hostile text everywhere.
async fn failed_task(app: &TestApp) -> (String, String) {
    let steps = "
  - { name: charge, handler: h.charge, retry: { max_attempts: 1 } }
  - { name: ship, handler: h.ship, depends_on: [charge] }
";
    app.register_yaml(&template("default", "order", steps))
        .await
        .expect(StatusCode::CREATED);
    let task = app
        .post(
            "/v1/tasks",
            json!({"template": "order", "context": {"note": "<script>alert(1)</script>"},
                   "tags": ["<b>bold</b>", "vip"]}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    app.register_worker("worker-<1>", &["default"]).await;
    let claimed = app.poll_one("default").await;
    app.report(
        &claimed,
        "fail",
        json!({"error_type": "declined", "message": "<img src=x onerror=alert(2)>", "retryable": false}),
    )
    .await
    .expect(StatusCode::OK);
    (
        task["id"].as_str().unwrap().to_owned(),
        claimed["lease"]["step_id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn visitors_without_a_valid_token_are_sent_to_the_login_form() {
    let app = test_app().await;
    let reply = app
        .send(ui_request(
            Method::GET,
            "/ui/tasks?state=failed",
            None,
            None,
        ))
        .await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);
    assert_eq!(
        location(&reply),
        "/ui/login?next=%2Fui%2Ftasks%3Fstate%3Dfailed"
    );
    let reply = page(&app, "/ui", "not-a-token").await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER);

    let form = app
        .send(ui_request(
            Method::GET,
            "/ui/login?next=/ui/tasks",
            None,
            None,
        ))
        .await
        .expect(StatusCode::OK)
        .text();
    assert!(form.contains("type=\"password\""), "{form}");
    assert!(!form.contains("Overview</a>"), "no navigation before login");

    let refused = app
        .send(ui_request(
            Method::POST,
            "/ui/login",
            None,
            Some("token=nope&next=%2Fui".into()),
        ))
        .await
        .expect(StatusCode::UNAUTHORIZED);
    assert!(refused.text().contains("Unknown token."));
    assert!(refused.headers.get(SET_COOKIE).is_none());
    app.send(ui_request(
        Method::POST,
        "/ui/login",
        None,
        Some(format!("token={WORKER}")),
    ))
    .await
    .expect(StatusCode::FORBIDDEN);

    let login = app
        .send(ui_request(
            Method::POST,
            "/ui/login",
            None,
            Some(format!("token={OPERATOR}&next=%2Fui%2Ftasks")),
        ))
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/ui/tasks");
    let cookie = login.headers[SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with(&format!("tasker_ui_token={OPERATOR};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");

    let mut over_tls = ui_request(
        Method::POST,
        "/ui/login",
        None,
        Some(format!("token={VIEWER}&next=https://evil.example")),
    );
    over_tls
        .headers_mut()
        .insert("x-forwarded-proto", "https".parse().unwrap());
    let login = app.send(over_tls).await.expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&login), "/ui", "no redirect out of the dashboard");
    assert!(
        login.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .ends_with("; Secure")
    );

    // Actions without a session are refused, not redirected.
    app.send(ui_request(
        Method::POST,
        "/ui/logout",
        None,
        Some(String::new()),
    ))
    .await
    .expect(StatusCode::UNAUTHORIZED);
    // A worker token in the cookie may not read the dashboard.
    page(&app, "/ui", WORKER)
        .await
        .expect(StatusCode::FORBIDDEN);

    let logout = submit(&app, "/ui/logout", OPERATOR, "")
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&logout), "/ui/login");
    assert!(
        logout.headers[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn assets_are_served_without_a_session() {
    let app = test_app().await;
    let css = app
        .send(ui_request(Method::GET, "/ui/assets/ui.css", None, None))
        .await
        .expect(StatusCode::OK);
    assert!(css.content_type().starts_with("text/css"));
    let js = app
        .send(ui_request(Method::GET, "/ui/assets/ui.js", None, None))
        .await
        .expect(StatusCode::OK);
    assert!(js.content_type().starts_with("text/javascript"));
    assert!(js.text().contains("EventSource"));
}

#[tokio::test]
async fn every_page_renders_and_only_acting_tokens_see_actions() {
    let app = test_app().await;
    let (task_id, _) = failed_task(&app).await;
    app.post(
        "/v1/schedules",
        json!({"name": "nightly", "template": "order", "cron": "0 2 * * *"}),
    )
    .await
    .expect(StatusCode::CREATED);
    // Each page with a text only it shows.
    let pages = [
        ("/ui".to_owned(), "Recent failures"),
        ("/ui/tasks".to_owned(), "order@1"),
        (format!("/ui/tasks/{task_id}"), "Context"),
        (format!("/ui/tasks/{task_id}/live"), "History"),
        (
            "/ui/templates".to_owned(),
            "/ui/templates/default/order?version=1",
        ),
        ("/ui/templates/default/order".to_owned(), "Max attempts"),
        ("/ui/dead-letters".to_owned(), "declined"),
        ("/ui/schedules".to_owned(), "nightly"),
    ];
    for (path, shown) in &pages {
        let html = page(&app, path, OPERATOR)
            .await
            .expect(StatusCode::OK)
            .text();
        assert!(html.contains(shown), "{path} lacks {shown}: {html}");
        let html = page(&app, path, VIEWER).await.expect(StatusCode::OK).text();
        assert!(html.contains(shown), "{path} lacks {shown} for a viewer");
        for action in ACTIONS {
            assert!(
                !html.contains(action),
                "{path} shows {action} to a viewer: {html}"
            );
        }
    }
    let detail = page(&app, &format!("/ui/tasks/{task_id}"), ADMIN)
        .await
        .text();
    for action in ["/retry\"", "/resolve\"", "/cancel\""] {
        assert!(detail.contains(action), "operator sees {action}");
    }
    assert!(
        detail.contains("class=\"node state-failed\" data-step=\"charge\""),
        "{detail}"
    );
    assert!(detail.contains("data-step=\"ship\" data-state=\"pending\""));
    assert!(detail.contains("Attempts (1)"), "attempts from the history");
    assert!(
        detail.contains("Why is it waiting?")
            && detail.contains("Blocked: charge (failed) must be retried or resolved"),
        "the explanation names the failed parent: {detail}"
    );
    let overview = page(&app, "/ui", OPERATOR).await.text();
    assert!(overview.contains("Recent failures") && overview.contains(&task_id[..13]));
    assert!(
        overview.contains("1 started, 0 completed, 1 failed"),
        "{overview}"
    );
    let schedules = page(&app, "/ui/schedules", OPERATOR).await.text();
    assert!(
        schedules.contains("Trigger now") && schedules.contains("<time"),
        "{schedules}"
    );
    let template = page(&app, "/ui/templates/default/order", VIEWER)
        .await
        .text();
    assert!(template.contains("<svg class=\"dag\"") && template.contains("h.ship"));
    assert!(
        template.contains("<td>1</td>"),
        "charge's max attempts: {template}"
    );
}

#[tokio::test]
async fn user_data_is_escaped_on_every_page() {
    let app = test_app().await;
    let (task_id, _) = failed_task(&app).await;
    for path in [
        format!("/ui/tasks/{task_id}"),
        "/ui/tasks".to_owned(),
        "/ui/dead-letters".to_owned(),
        "/ui".to_owned(),
    ] {
        let html = page(&app, &path, OPERATOR)
            .await
            .expect(StatusCode::OK)
            .text();
        for raw in ["<script>alert(1)", "<img src=x", "<b>bold", "worker-<1>"] {
            assert!(!html.contains(raw), "{path} carries {raw} unescaped");
        }
    }
    let detail = page(&app, &format!("/ui/tasks/{task_id}"), OPERATOR)
        .await
        .text();
    assert!(
        detail.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "context shown"
    );
    assert!(detail.contains("&lt;b&gt;bold&lt;/b&gt;"), "tag shown");
    assert!(
        detail.contains("&lt;img src=x onerror=alert(2)&gt;"),
        "error shown"
    );
    let overview = page(&app, "/ui", OPERATOR).await.text();
    assert!(overview.contains("worker-&lt;1&gt;"), "worker shown");
}

#[tokio::test]
async fn actions_need_an_acting_token_and_the_session_csrf_token() {
    let app = test_app().await;
    let (task_id, step_id) = failed_task(&app).await;
    let retry = format!("/ui/steps/{step_id}/retry");
    // A viewer's pages carry a token only in the logout form; an action
    // with it is refused all the same.
    let viewer_csrf = csrf(&page(&app, "/ui/tasks", VIEWER).await.text());
    let reply = submit(&app, &retry, VIEWER, &format!("csrf={viewer_csrf}")).await;
    assert_eq!(reply.status, StatusCode::FORBIDDEN);
    assert!(reply.text().contains("read-only"));
    let detail = page(&app, &format!("/ui/tasks/{task_id}"), OPERATOR)
        .await
        .text();
    let token = csrf(&detail);
    submit(&app, &retry, OPERATOR, "")
        .await
        .expect(StatusCode::FORBIDDEN);
    submit(
        &app,
        &retry,
        OPERATOR,
        "csrf=0123456789abcdef0123456789abcdef",
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    // Another session's token does not pass either.
    let admin_token = csrf(&page(&app, "/ui/tasks", ADMIN).await.text());
    assert_ne!(admin_token, token);
    submit(&app, &retry, OPERATOR, &format!("csrf={admin_token}"))
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&format!("/v1/steps/{step_id}")).await.json()["state"],
        "failed"
    );

    let done = submit(&app, &retry, OPERATOR, &format!("csrf={token}"))
        .await
        .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&done), format!("/ui/tasks/{task_id}"));
    assert_eq!(
        app.get(&format!("/v1/steps/{step_id}")).await.json()["state"],
        "ready"
    );
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_id}")).await.json()["state"],
        "running"
    );
    // Retrying it again is refused by the engine, shown as a page.
    let again = submit(&app, &retry, OPERATOR, &format!("csrf={token}")).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.text());
    assert!(again.content_type().starts_with("text/html"));

    let cancel = submit(
        &app,
        &format!("/ui/tasks/{task_id}/cancel"),
        OPERATOR,
        &format!("csrf={token}&reason=no+longer+%3Cneeded%3E"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&cancel), format!("/ui/tasks/{task_id}"));
    let history = app
        .get(&format!("/v1/tasks/{task_id}/history"))
        .await
        .json();
    assert!(
        history.to_string().contains("no longer <needed>"),
        "{history}"
    );
    let detail = page(&app, &format!("/ui/tasks/{task_id}"), OPERATOR)
        .await
        .text();
    assert!(detail.contains("no longer &lt;needed&gt;"));
    assert!(
        !detail.contains("/cancel\""),
        "a cancelled task offers no cancel"
    );
}

#[tokio::test]
async fn dead_letters_are_retried_and_resolved_in_bulk() {
    let app = test_app().await;
    let (task_a, step_a) = failed_task(&app).await;
    let task_b = app
        .post("/v1/tasks", json!({"template": "order"}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    let claimed = app.poll_one("default").await;
    app.report(
        &claimed,
        "fail",
        json!({"error_type": "x", "message": "m", "retryable": false}),
    )
    .await
    .expect(StatusCode::OK);
    let step_b = claimed["lease"]["step_id"].as_str().unwrap().to_owned();
    let html = page(&app, "/ui/dead-letters", OPERATOR).await.text();
    assert!(html.contains(&step_a) && html.contains(&step_b), "{html}");
    let token = csrf(&html);
    submit(
        &app,
        "/ui/dead-letters/retry",
        OPERATOR,
        &format!("csrf={token}"),
    )
    .await
    .expect(StatusCode::BAD_REQUEST);
    submit(
        &app,
        "/ui/dead-letters/retry",
        OPERATOR,
        &format!("csrf={token}&step=nope"),
    )
    .await
    .expect(StatusCode::NOT_FOUND);
    submit(
        &app,
        "/ui/dead-letters/retry",
        VIEWER,
        &format!("csrf={token}&step={step_a}"),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
    let reply = submit(
        &app,
        "/ui/dead-letters/retry",
        OPERATOR,
        &format!("csrf={token}&step={step_a}"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert_eq!(location(&reply), "/ui/dead-letters");
    submit(
        &app,
        "/ui/dead-letters/resolve",
        OPERATOR,
        &format!("csrf={token}&step={step_b}"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/v1/steps/{step_a}")).await.json()["state"],
        "ready"
    );
    assert_eq!(
        app.get(&format!("/v1/steps/{step_b}")).await.json()["state"],
        "resolved"
    );
    assert_eq!(
        app.get(&format!("/v1/tasks/{task_a}")).await.json()["state"],
        "running"
    );
    assert_eq!(
        app.get(&format!("/v1/tasks/{}", task_b["id"].as_str().unwrap()))
            .await
            .json()["state"],
        "running"
    );
    let html = page(&app, "/ui/dead-letters", OPERATOR).await.text();
    assert!(html.contains("No dead letters."), "{html}");
}

#[tokio::test]
async fn schedules_are_paused_resumed_and_triggered() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let schedule = app
        .post(
            "/v1/schedules",
            json!({"name": "every-hour", "template": "linear", "interval": "1h"}),
        )
        .await
        .expect(StatusCode::CREATED)
        .json();
    let id = schedule["id"].as_str().unwrap();
    let token = csrf(&page(&app, "/ui/schedules", OPERATOR).await.text());
    submit(
        &app,
        &format!("/ui/schedules/{id}/pause"),
        OPERATOR,
        &format!("csrf={token}"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/v1/schedules/{id}")).await.json()["paused"],
        true
    );
    let html = page(&app, "/ui/schedules", OPERATOR).await.text();
    assert!(
        html.contains(">paused<") && html.contains(">Resume<"),
        "{html}"
    );
    submit(
        &app,
        &format!("/ui/schedules/{id}/resume"),
        OPERATOR,
        &format!("csrf={token}"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&format!("/v1/schedules/{id}")).await.json()["paused"],
        false
    );
    let fired = submit(
        &app,
        &format!("/ui/schedules/{id}/trigger"),
        OPERATOR,
        &format!("csrf={token}"),
    )
    .await
    .expect(StatusCode::SEE_OTHER);
    let task_page = location(&fired);
    assert!(task_page.starts_with("/ui/tasks/"), "{task_page}");
    page(&app, &task_page, OPERATOR)
        .await
        .expect(StatusCode::OK);
    submit(
        &app,
        &format!("/ui/schedules/{id}/trigger"),
        VIEWER,
        &format!("csrf={token}"),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn unknown_things_are_404_pages() {
    let app = test_app().await;
    let token = csrf(&page(&app, "/ui/tasks", OPERATOR).await.text());
    let missing = uuid::Uuid::now_v7();
    for path in [
        format!("/ui/tasks/{missing}"),
        "/ui/tasks/not-an-id".to_owned(),
        format!("/ui/tasks/{missing}/live"),
        format!("/ui/tasks/{missing}/events"),
        "/ui/templates/default/nope".to_owned(),
    ] {
        let reply = page(&app, &path, OPERATOR).await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{path}");
        assert!(reply.content_type().starts_with("text/html"), "{path}");
    }
    for path in [
        format!("/ui/steps/{missing}/retry"),
        format!("/ui/steps/{missing}/resolve"),
        format!("/ui/tasks/{missing}/cancel"),
        format!("/ui/schedules/{missing}/pause"),
        "/ui/steps/nope/retry".to_owned(),
    ] {
        let reply = submit(&app, &path, OPERATOR, &format!("csrf={token}")).await;
        assert_eq!(
            reply.status,
            StatusCode::NOT_FOUND,
            "{path}: {}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn the_task_list_filters_and_refuses_bad_filters() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    let tagged = app
        .post("/v1/tasks", json!({"template": "linear", "tags": ["blue"]}))
        .await
        .expect(StatusCode::CREATED)
        .json();
    let plain = app.create_task("default", "linear", json!({})).await;
    let (tagged, plain) = (
        tagged["id"].as_str().unwrap(),
        plain["id"].as_str().unwrap(),
    );

    let html = page(&app, "/ui/tasks?tag=blue", OPERATOR)
        .await
        .expect(StatusCode::OK)
        .text();
    assert!(html.contains(tagged) && !html.contains(plain), "{html}");
    let html = page(
        &app,
        "/ui/tasks?state=running&namespace=default&template=linear",
        OPERATOR,
    )
    .await
    .text();
    assert!(html.contains(tagged) && html.contains(plain));
    let html = page(&app, "/ui/tasks?state=complete", OPERATOR)
        .await
        .text();
    assert!(html.contains("No tasks match."));
    let html = page(&app, "/ui/tasks?from=2999-01-01T00:00", OPERATOR)
        .await
        .text();
    assert!(html.contains("No tasks match."));
    let html = page(
        &app,
        "/ui/tasks?from=2000-01-01&to=2999-01-01T00:00",
        OPERATOR,
    )
    .await
    .text();
    assert!(html.contains(tagged) && html.contains(plain));
    let bad = page(&app, "/ui/tasks?state=sleeping", OPERATOR)
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("sleeping"));
    let bad = page(&app, "/ui/tasks?from=yesterday", OPERATOR)
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("from"));

    // The same filters through the API.
    let listed = app
        .get("/v1/tasks?tag=blue&created_after=2000-01-01T00:00:00Z")
        .await
        .expect(StatusCode::OK)
        .json();
    assert_eq!(listed["tasks"].as_array().unwrap().len(), 1);
    let listed = app
        .get("/v1/tasks?created_before=2000-01-01T00:00:00Z")
        .await
        .json();
    assert!(listed["tasks"].as_array().unwrap().is_empty());
    let bad = app
        .get("/v1/tasks?created_after=soon")
        .await
        .expect(StatusCode::BAD_REQUEST);
    assert!(bad.text().contains("created_after"));
}

#[tokio::test]
async fn a_finished_task_streams_its_state_and_ends() {
    let app = test_app().await;
    let (task_id, _) = failed_task(&app).await;
    let reply = page(&app, &format!("/ui/tasks/{task_id}/events"), VIEWER)
        .await
        .expect(StatusCode::OK);
    assert!(reply.content_type().starts_with("text/event-stream"));
    let text = reply.text();
    assert!(text.starts_with("event: live\ndata: "), "{text}");
    assert!(text.contains("data-state=\"failed\""));
    assert!(
        text.trim_end().ends_with("event: done\ndata: finished"),
        "{text}"
    );
    assert_eq!(
        text.matches("event: live").count(),
        1,
        "one update, then done"
    );
}

#[tokio::test]
async fn with_auth_disabled_the_session_cookie_anchors_the_csrf_token() {
    let app = test_app_with(Default::default(), |config| {
        config.auth = tasker_api::AuthConfig::disabled()
    })
    .await;
    let (task_id, step_id) = failed_task(&app).await;
    let first = app
        .send(ui_request(
            Method::GET,
            &format!("/ui/tasks/{task_id}"),
            None,
            None,
        ))
        .await
        .expect(StatusCode::OK);
    let cookie = first.headers[SET_COOKIE].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("tasker_ui_session=") && cookie.contains("HttpOnly"));
    let session = cookie.split(';').next().unwrap().to_owned();
    let token = csrf(&first.text());
    assert!(
        first.text().contains("/retry\""),
        "everyone may act without auth"
    );
    let mut request = ui_request(
        Method::POST,
        &format!("/ui/steps/{step_id}/retry"),
        None,
        Some(format!("csrf={token}")),
    );
    request
        .headers_mut()
        .insert(COOKIE, session.parse().unwrap());
    app.send(request).await.expect(StatusCode::SEE_OTHER);
    // Without the session cookie the token means nothing.
    let request = ui_request(
        Method::POST,
        &format!("/ui/steps/{step_id}/resolve"),
        None,
        Some(format!("csrf={token}")),
    );
    app.send(request).await.expect(StatusCode::FORBIDDEN);
    app.send(ui_request(Method::GET, "/ui/login", None, None))
        .await
        .expect(StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn viewer_tokens_read_the_api_but_change_nothing() {
    let app = test_app().await;
    app.register_yaml(&template("default", "linear", LINEAR))
        .await
        .expect(StatusCode::CREATED);
    app.call(Method::GET, "/v1/tasks", Some(VIEWER), None)
        .await
        .expect(StatusCode::OK);
    app.call(Method::GET, "/v1/templates", Some(VIEWER), None)
        .await
        .expect(StatusCode::OK);
    let refused = app
        .call(
            Method::POST,
            "/v1/tasks",
            Some(VIEWER),
            Some(json!({"template": "linear"})),
        )
        .await
        .expect(StatusCode::FORBIDDEN);
    assert_eq!(refused.error_code(), "forbidden");
    app.call(
        Method::POST,
        "/v1/workers/register",
        Some(VIEWER),
        Some(json!({"worker_id": "w", "namespaces": ["default"]})),
    )
    .await
    .expect(StatusCode::FORBIDDEN);
}
