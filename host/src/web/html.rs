//! HTML building blocks: escaping, the page layout, and tables that sort and
//! filter on the server (so they work with scripts off, and stay fast with
//! thousands of rows: one pass over the rows, no script in the browser).

use std::collections::BTreeMap;
use std::fmt::Write as _;

/// Text escaped for HTML content and attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A query string value, percent-encoded.
pub fn url(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// The query parameters of a page request.
pub type Query = BTreeMap<String, String>;

/// The main navigation: (path, label).
const NAV: &[(&str, &str)] = &[
    ("/ui/providers", "Storage providers"),
    ("/ui/systems", "Storage systems"),
    ("/ui/hosts", "Hosts"),
    ("/ui/tasks", "Tasks"),
    ("/ui/drivers", "Drivers"),
];

/// A whole page: layout, navigation (when signed in), the notice if any,
/// then `body`.
pub struct Page<'a> {
    /// The `<h1>` and `<title>`.
    pub title: &'a str,
    /// Which navigation entry is current.
    pub current: &'a str,
    /// The session's CSRF token (`None`: signed out, no navigation).
    pub csrf: Option<&'a str>,
    /// A one-line message from the last action.
    pub notice: Option<&'a str>,
    /// Reload every N seconds (tasks in progress).
    pub refresh_secs: Option<u32>,
}

impl Page<'_> {
    /// Renders the page around `body` (already HTML).
    pub fn render(&self, body: &str) -> String {
        let mut out = String::with_capacity(body.len() + 2048);
        let _ = write!(
            out,
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">{}\
             <title>{} - Southbound</title><link rel=\"stylesheet\" href=\"/ui/app.css\"></head><body>",
            self.refresh_secs
                .map(|s| format!("<meta http-equiv=\"refresh\" content=\"{s}\">"))
                .unwrap_or_default(),
            esc(self.title)
        );
        out.push_str("<header><span class=\"brand\">Southbound</span>");
        if let Some(csrf) = self.csrf {
            out.push_str("<nav aria-label=\"Main\"><ul>");
            for (path, label) in NAV {
                let current = if *path == self.current {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                let _ = write!(out, "<li><a href=\"{path}\"{current}>{label}</a></li>");
            }
            let _ = write!(
                out,
                "</ul></nav><form method=\"post\" action=\"/ui/sign-out\" class=\"sign-out\">{}<button type=\"submit\">Sign out</button></form>",
                csrf_field(csrf)
            );
        }
        let _ = write!(out, "</header><main><h1>{}</h1>", esc(self.title));
        if let Some(notice) = self.notice {
            let _ = write!(
                out,
                "<p class=\"notice\" role=\"status\">{}</p>",
                esc(notice)
            );
        }
        out.push_str(body);
        out.push_str("</main></body></html>\n");
        out
    }
}

/// The hidden field every form that changes something carries.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(token)
    )
}

/// A form with one button that POSTs to `action` (rescan, remove, ...).
pub fn action_button(action: &str, label: &str, csrf: &str) -> String {
    format!(
        "<form method=\"post\" action=\"{}\" class=\"inline\">{}<button type=\"submit\">{}</button></form>",
        esc(action),
        csrf_field(csrf),
        esc(label)
    )
}

/// A capacity bar: used share of `total` (free and used in words beside).
pub fn capacity_bar(total_kib: u64, free_kib: u64) -> String {
    let used = total_kib.saturating_sub(free_kib);
    let percent = if total_kib == 0 {
        0
    } else {
        (used as u128 * 100 / total_kib as u128) as u64
    };
    format!(
        "<meter min=\"0\" max=\"100\" value=\"{percent}\" title=\"{percent}% used\">{percent}%</meter> <span class=\"muted\">{percent}% used</span>"
    )
}

/// One cell: its HTML, and the key it sorts and filters by.
pub struct Cell {
    html: String,
    key: Key,
}

/// How a cell sorts.
#[derive(Debug, Clone, PartialEq, PartialOrd)]
enum Key {
    Number(f64),
    Text(String),
}

impl Cell {
    /// Text, escaped; sorts as text.
    pub fn text(text: impl AsRef<str>) -> Self {
        let text = text.as_ref();
        Self {
            html: esc(text),
            key: Key::Text(text.to_lowercase()),
        }
    }

    /// A number shown as `shown`; sorts by `value`.
    pub fn number(value: f64, shown: impl AsRef<str>) -> Self {
        Self {
            html: esc(shown.as_ref()),
            key: Key::Number(value),
        }
    }

    /// Ready HTML (links, buttons, bars); sorts and filters by `key`.
    pub fn html(html: String, key: impl AsRef<str>) -> Self {
        Self {
            html,
            key: Key::Text(key.as_ref().to_lowercase()),
        }
    }

    fn matches(&self, needle: &str) -> bool {
        match &self.key {
            Key::Text(t) => t.contains(needle),
            Key::Number(_) => self.html.to_lowercase().contains(needle),
        }
    }
}

/// A table that sorts by any column and filters by text, from the query
/// (`<id>-sort`, `<id>-desc`, `<id>-q`), so several tables share a page.
pub struct Table<'a> {
    id: &'a str,
    caption: &'a str,
    columns: &'a [&'a str],
    rows: Vec<Vec<Cell>>,
}

impl<'a> Table<'a> {
    /// An empty table; `id` names its query parameters and its element.
    pub fn new(id: &'a str, caption: &'a str, columns: &'a [&'a str]) -> Self {
        Self {
            id,
            caption,
            columns,
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    /// The table, sorted and filtered as `query` says, with its filter form
    /// and a count. `path` is the page's own path.
    pub fn render(mut self, path: &str, query: &Query) -> String {
        let param = |name: &str| format!("{}-{name}", self.id);
        let needle = query
            .get(&param("q"))
            .map(|q| q.trim().to_lowercase())
            .unwrap_or_default();
        let sort: Option<usize> = query
            .get(&param("sort"))
            .and_then(|s| s.parse().ok())
            .filter(|c| *c < self.columns.len());
        let desc = query.get(&param("desc")).is_some_and(|d| d == "1");
        let total = self.rows.len();
        if !needle.is_empty() {
            self.rows
                .retain(|row| row.iter().any(|cell| cell.matches(&needle)));
        }
        if let Some(column) = sort {
            self.rows.sort_by(|a, b| {
                let order = a[column]
                    .key
                    .partial_cmp(&b[column].key)
                    .unwrap_or(std::cmp::Ordering::Equal);
                if desc {
                    order.reverse()
                } else {
                    order
                }
            });
        }
        // Links keep the other parameters of the page (other tables' state).
        let others: String = query
            .iter()
            .filter(|(k, _)| ![param("sort"), param("desc"), "notice".to_string()].contains(k))
            .map(|(k, v)| format!("&{}={}", url(k), url(v)))
            .collect();
        let mut out = String::with_capacity(self.rows.len() * 200 + 1024);
        let _ = write!(
            out,
            "<section class=\"table\" id=\"{id}\"><form method=\"get\" action=\"{path}#{id}\" class=\"filter\" role=\"search\">",
            id = esc(self.id),
            path = esc(path)
        );
        for (k, v) in query
            .iter()
            .filter(|(k, _)| **k != param("q") && *k != "notice")
        {
            let _ = write!(
                out,
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                esc(k),
                esc(v)
            );
        }
        let _ = write!(
            out,
            "<label for=\"{id}-q\">Filter {caption}</label> <input type=\"search\" id=\"{id}-q\" name=\"{id}-q\" value=\"{q}\"> <button type=\"submit\">Filter</button></form>",
            id = esc(self.id),
            caption = esc(&self.caption.to_lowercase()),
            q = esc(query.get(&param("q")).map(String::as_str).unwrap_or(""))
        );
        let _ = write!(
            out,
            "<p class=\"count\" id=\"{}-count\">{} of {total} shown</p>",
            esc(self.id),
            self.rows.len()
        );
        let _ = write!(
            out,
            "<table><caption>{}</caption><thead><tr>",
            esc(self.caption)
        );
        for (i, column) in self.columns.iter().enumerate() {
            let (aria, next_desc, arrow) = match (sort == Some(i), desc) {
                (true, false) => (" aria-sort=\"ascending\"", "1", " ▲"),
                (true, true) => (" aria-sort=\"descending\"", "0", " ▼"),
                _ => ("", "0", ""),
            };
            let _ = write!(
                out,
                "<th scope=\"col\"{aria}><a href=\"{path}?{id}-sort={i}&amp;{id}-desc={next_desc}{others}#{id}\">{label}{arrow}</a></th>",
                path = esc(path),
                id = esc(self.id),
                others = esc(&others),
                label = esc(column)
            );
        }
        out.push_str("</tr></thead><tbody>");
        for row in &self.rows {
            out.push_str("<tr>");
            for (i, cell) in row.iter().enumerate() {
                if i == 0 {
                    let _ = write!(out, "<th scope=\"row\">{}</th>", cell.html);
                } else {
                    let _ = write!(out, "<td>{}</td>", cell.html);
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table></section>");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_sort_filter_and_escape() {
        let mut table = Table::new("t", "Things", &["Name", "Size"]);
        for (name, size) in [("b<x>", 2.0), ("a", 10.0), ("c", 1.0)] {
            table.row(vec![
                Cell::text(name),
                Cell::number(size, format!("{size} GiB")),
            ]);
        }
        let mut query = Query::new();
        query.insert("t-sort".into(), "1".into());
        query.insert("t-desc".into(), "1".into());
        let html = table.render("/ui/x", &query);
        let a = html.find(">a<").unwrap();
        let b = html.find("b&lt;x&gt;").unwrap();
        let c = html.find(">c<").unwrap();
        assert!(a < b && b < c, "sorted by size, descending");
        assert!(html.contains("aria-sort=\"descending\""));
        assert!(html.contains("3 of 3 shown"));

        let mut table = Table::new("t", "Things", &["Name"]);
        table.row(vec![Cell::text("alpha")]);
        table.row(vec![Cell::text("beta")]);
        query.clear();
        query.insert("t-q".into(), "ALP".into());
        let html = table.render("/ui/x", &query);
        assert!(html.contains("alpha") && !html.contains("beta"));
        assert!(html.contains("1 of 2 shown"));
    }
}
