//! The HTML templates, compiled into the binary (no files to install, no
//! build step). Every `.html` template auto-escapes what it prints: stored
//! data (headers, bodies, caller names) can never become markup.

use super::reply::{WebError, WebResult};
use minijinja::value::Value;
use minijinja::{Environment, UndefinedBehavior};

const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("templates/base.html")),
    ("style.css", include_str!("templates/style.css")),
    ("flows.html", include_str!("templates/flows.html")),
    ("flow.html", include_str!("templates/flow.html")),
    ("exchanges.html", include_str!("templates/exchanges.html")),
    ("exchange.html", include_str!("templates/exchange.html")),
    ("error.html", include_str!("templates/error.html")),
];

pub struct Templates {
    env: Environment<'static>,
}

impl Templates {
    pub fn new() -> Self {
        let mut env = Environment::new();
        // A misspelt field is an error in the tests, not an empty cell.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("template {name} does not parse: {e:#}"));
        }
        Templates { env }
    }

    /// `ctx`: built with `minijinja::context!`, Rust values wrapped in
    /// `Serde` (not through `serde_json::Value`, whose arbitrary-precision
    /// numbers would reach the template as maps).
    pub fn render(&self, name: &str, ctx: Value) -> WebResult<String> {
        self.env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| WebError::internal(format!("cannot render {name}: {e:#}")))
    }
}
