//! The dashboard page: HTML, JavaScript and CSS from `ui/`, embedded in the binary. The policy
//! lets the page load only its own files and talk only to this server: nothing from a CDN, no
//! web font, no request to any third party.

use actix_web::HttpResponse;

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data: blob:; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

fn file(content_type: &str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("Content-Security-Policy", POLICY))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // frame-ancestors says the same to browsers that read CSP; this to those that do not.
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-cache"))
        .body(body)
}

pub async fn page() -> HttpResponse {
    file("text/html; charset=utf-8", include_str!("ui/index.html"))
}

pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", include_str!("ui/app.js"))
}

pub async fn manage_script() -> HttpResponse {
    file(
        "text/javascript; charset=utf-8",
        include_str!("ui/manage.js"),
    )
}

pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", include_str!("ui/app.css"))
}
