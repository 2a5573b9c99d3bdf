//! `GET /export.csv`: any breakdown as CSV, from the same query code as the Stats API.
//!
//! `?site=shop.example&from=2026-11-01&to=2026-11-30&dimensions=PAGE&metrics=VISITORS,PAGEVIEWS`
//! `&filter=SOURCE:IS:google|bing&limit=1000` (`filter` may repeat; its values are split on `|`);
//! `&property=plan` names the key of the `PROPERTY` dimension and of `PROPERTY` filters.

use async_graphql::{InputType, Name, Value};

use crate::stats::{
    DateRange, Dimension, Filter, FilterOp, Metric, Period, QueryError, StatsQuery,
};

/// A query from the export's URL parameters.
pub fn query_of(params: &[(String, String)]) -> Result<StatsQuery, QueryError> {
    let one = |key: &str| {
        params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let list = |key: &str| {
        one(key)
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect::<Vec<String>>()
    };
    let metrics = list("metrics")
        .iter()
        .map(|m| {
            enum_of::<Metric>(m)
                .ok_or_else(|| QueryError::Metrics(format!("no metric named {m:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let dimensions = list("dimensions")
        .iter()
        .map(|d| {
            enum_of::<Dimension>(d)
                .ok_or_else(|| QueryError::Dimensions(format!("no dimension named {d:?}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut filters = Vec::new();
    for (_, text) in params.iter().filter(|(k, _)| k == "filter") {
        let mut parts = text.splitn(3, ':');
        let (Some(d), Some(op), Some(values)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(QueryError::Filters(format!(
                "{text:?} is not DIMENSION:OP:value[|value…]"
            )));
        };
        let unknown = || QueryError::Filters(format!("{text:?}: unknown dimension or operator"));
        filters.push(Filter {
            dimension: enum_of::<Dimension>(d).ok_or_else(unknown)?,
            property: one("property").map(str::to_owned),
            op: enum_of::<FilterOp>(op).ok_or_else(unknown)?,
            values: values.split('|').map(str::to_owned).collect(),
        });
    }
    let number = |key: &'static str, default: i32| match one(key) {
        None => Ok(default),
        Some(n) => n
            .trim()
            .parse::<i32>()
            .map_err(|_| QueryError::NotANumber(key)),
    };
    // A time series alone carries all its buckets; a breakdown its first 1,000 rows.
    let series = dimensions.iter().all(|d| d.is_time()) && !dimensions.is_empty();
    let limit = match one("limit") {
        None if series => None,
        _ => Some(number("limit", 1000)?),
    };
    Ok(StatsQuery {
        site: one("site").unwrap_or("").to_owned(),
        date_range: DateRange {
            from: one("from").map(str::to_owned),
            to: one("to").map(str::to_owned),
            period: match one("period") {
                None => None,
                Some(name) => Some(Period::named(name).ok_or(QueryError::UnknownPeriod)?),
            },
        },
        metrics,
        dimensions,
        // The key of the PROPERTY dimension and of PROPERTY filters.
        property: one("property").map(str::to_owned),
        filters,
        order_by: Vec::new(),
        limit,
        offset: number("offset", 0)?,
        compare: None,
    })
}

fn enum_of<T: InputType>(name: &str) -> Option<T> {
    T::parse(Some(Value::Enum(Name::new(name.trim())))).ok()
}

/// RFC 4180 CSV. A cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@`, or their
/// fullwidth forms, after any leading white space) is prefixed with `'`: page paths and
/// campaign names come from visitors' browsers.
pub fn csv(header: &[String], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    for line in std::iter::once(header).chain(rows.iter().map(Vec::as_slice)) {
        let cells: Vec<String> = line.iter().map(|c| cell(c)).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    }
    out
}

/// What starts a formula in some spreadsheet: Excel and LibreOffice skip leading spaces, and
/// read the fullwidth signs as the ASCII ones.
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

fn cell(value: &str) -> String {
    let runs = value.starts_with(['\t', '\r']) || value.trim_start().starts_with(FORMULA_STARTS);
    let value = if runs {
        format!("'{value}")
    } else {
        value.to_owned()
    };
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_quoted_and_formulas_defused() {
        let rows = vec![vec!["/a,b".to_owned(), "=HYPERLINK(\"x\")".to_owned()]];
        assert_eq!(
            csv(&["page".into(), "source".into()], &rows),
            "page,source\r\n\"/a,b\",\"'=HYPERLINK(\"\"x\"\")\"\r\n"
        );
    }

    #[test]
    fn a_formula_behind_white_space_or_in_fullwidth_signs_is_defused_too() {
        for formula in [
            " =1+1",
            "\u{3000}=1+1",
            "＝1+1",
            " ＋1",
            "\u{a0}@SUM(A1)",
            "－1",
        ] {
            assert_eq!(cell(formula), format!("'{formula}"), "{formula:?}");
        }
        assert_eq!(cell("/pricing"), "/pricing");
        assert_eq!(cell("a=b"), "a=b", "only a leading sign runs");
    }

    #[test]
    fn an_export_url_becomes_a_query() {
        let params: Vec<(String, String)> = [
            ("site", "shop.example"),
            ("from", "2026-11-01"),
            ("to", "2026-11-30"),
            ("dimensions", "PAGE"),
            ("metrics", "VISITORS,PAGEVIEWS"),
            ("filter", "SOURCE:IS:google|bing"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let q = query_of(&params).expect("parses");
        assert_eq!(q.metrics, vec![Metric::Visitors, Metric::Pageviews]);
        assert_eq!(q.dimensions, vec![Dimension::Page]);
        assert_eq!(q.filters[0].values, vec!["google", "bing"]);
        let wrong = [("metrics".to_owned(), "VISITORZ".to_owned())];
        let refused = query_of(&wrong).err().map(|e| e.to_string());
        assert_eq!(
            refused.as_deref(),
            Some("metrics: no metric named \"VISITORZ\""),
            "named under metrics, not dimensions"
        );
    }

    #[test]
    fn an_exported_time_series_carries_every_bucket_and_a_breakdown_its_first_thousand_rows() {
        let url = |dimensions: &str, limit: Option<&str>| {
            let mut params = vec![
                ("dimensions".to_owned(), dimensions.to_owned()),
                ("metrics".to_owned(), "VISITORS".to_owned()),
            ];
            params.extend(limit.map(|l| ("limit".to_owned(), l.to_owned())));
            query_of(&params).expect("parses").limit
        };
        assert_eq!(url("TIME_DAY", None), None);
        assert_eq!(url("TIME_DAY", Some("7")), Some(7));
        assert_eq!(url("PAGE", None), Some(1000));
        assert_eq!(url("TIME_DAY,PAGE", None), Some(1000));
    }
}
