//! Collecting mismatches instead of stopping at the first, so one run lists them all.

use serde_json::Value;

use super::{clip, json};

/// One line per mismatch found in an event.
#[derive(Default)]
pub(crate) struct Problems(pub(crate) Vec<String>);

impl Problems {
    pub(crate) fn push(&mut self, why: String) {
        self.0.push(why);
    }

    pub(crate) fn check(&mut self, ok: bool, why: impl FnOnce() -> String) {
        if !ok {
            self.0.push(why());
        }
    }

    /// The field at `path` is a scalar whose text is `want` (`"10"` matches `10`).
    pub(crate) fn eq_text(&mut self, ev: &Value, path: &str, want: &str) {
        let got = json::text_at(ev, path);
        self.check(got.as_deref() == Some(want), || {
            format!(
                "{path}: want {:?}, got {}",
                clip(want, 160),
                json::show_at(ev, path)
            )
        });
    }

    pub(crate) fn absent(&mut self, ev: &Value, path: &str) {
        self.check(json::get(ev, path).is_none(), || {
            format!("{path}: want absent, got {}", json::show_at(ev, path))
        });
    }

    pub(crate) fn not_true(&mut self, ev: &Value, path: &str) {
        self.check(json::get(ev, path) != Some(&Value::Bool(true)), || {
            format!("{path}: want absent or false, got true")
        });
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(crate) fn into_vec(self) -> Vec<String> {
        self.0
    }
}
