//! The two data tables beside the test: where each CrowdSec field lives in our OCSF
//! (`crowdsec-fields.csv`) and which lines or fields are out of the contract
//! (`crowdsec-exclusions.csv`).

use crate::support::{self, csv};

/// One row of `crowdsec-fields.csv`.
pub(super) struct Mapping {
    pub(super) parser: String,
    pub(super) field: String,
    /// `-` = not compared.
    pub(super) ocsf: String,
    pub(super) compare: String,
}

impl Mapping {
    pub(super) fn compared(&self) -> bool {
        self.ocsf != "-"
    }
}

pub(super) struct Fields(Vec<Mapping>);

impl Fields {
    pub(super) fn load() -> Self {
        let rows = csv::read_records(&support::data_file("crowdsec-fields.csv"));
        let fields = rows
            .into_iter()
            .map(|r| {
                let m = Mapping {
                    parser: r["parser"].clone(),
                    field: r["field"].clone(),
                    ocsf: r["ocsf"].clone(),
                    compare: r["compare"].clone(),
                };
                assert!(
                    !m.compared() || super::compare::MODES.contains(&m.compare.as_str()),
                    "crowdsec-fields.csv: {} {}: unknown compare mode {:?}",
                    m.parser,
                    m.field,
                    m.compare
                );
                assert!(
                    m.compared() || !r["comment"].trim().is_empty(),
                    "crowdsec-fields.csv: {} {} is not compared but says not why",
                    m.parser,
                    m.field
                );
                m
            })
            .collect();
        Self(fields)
    }

    /// The rows for `field` of `parser`: the most specific match wins (this parser before
    /// `*`, an exact field before `prefix.*` before `*`); several rows of the same
    /// specificity all apply.
    pub(super) fn lookup(&self, parser: &str, field: &str) -> Vec<&Mapping> {
        for p in [parser, "*"] {
            let mut candidates: Vec<(usize, &Mapping)> = self
                .0
                .iter()
                .filter(|m| m.parser == p)
                .filter_map(|m| field_specificity(&m.field, field).map(|s| (s, m)))
                .collect();
            if let Some(best) = candidates.iter().map(|(s, _)| *s).max() {
                candidates.retain(|(s, _)| *s == best);
                return candidates.into_iter().map(|(_, m)| m).collect();
            }
        }
        Vec::new()
    }

    /// Whether every field of `parser` is uncompared: a format outside the contract.
    pub(super) fn parser_out_of_scope(&self, parser: &str) -> bool {
        self.0
            .iter()
            .any(|m| m.parser == parser && m.field == "*" && !m.compared())
    }
}

/// How well `pattern` matches `field`: exact beats `prefix.*` (longer prefix first) beats `*`.
fn field_specificity(pattern: &str, field: &str) -> Option<usize> {
    if pattern == field {
        Some(usize::MAX)
    } else if pattern == "*" {
        Some(0)
    } else {
        let prefix = pattern.strip_suffix(".*")?;
        field
            .strip_prefix(prefix)?
            .starts_with('.')
            .then_some(prefix.len() + 1)
    }
}

/// One row of `crowdsec-exclusions.csv`.
pub(super) struct Exclusion {
    test: String,
    index: Option<usize>,
    /// `true`: the envelope (s00-raw); `false`: the service stages (s01-parse, s02-enrich).
    envelope: bool,
    fields: Option<Vec<String>>,
}

pub(super) struct Exclusions(Vec<Exclusion>);

impl Exclusions {
    pub(super) fn load() -> Self {
        let rows = csv::read_records(&support::data_file("crowdsec-exclusions.csv"));
        Self(
            rows.into_iter()
                .map(|r| {
                    assert!(
                        !r["reason"].trim().is_empty(),
                        "crowdsec-exclusions.csv: {} has no reason",
                        r["test"]
                    );
                    let envelope = match r["stage"].as_str() {
                        "s00-raw" => true,
                        "s01+" => false,
                        other => panic!("crowdsec-exclusions.csv: unknown stage {other}"),
                    };
                    Exclusion {
                        test: r["test"].clone(),
                        index: (r["index"] != "*")
                            .then(|| r["index"].parse().expect("index is a number or *")),
                        envelope,
                        fields: (r["fields"] != "*")
                            .then(|| r["fields"].split(';').map(str::to_owned).collect()),
                    }
                })
                .collect(),
        )
    }

    pub(super) fn excludes(&self, test: &str, stage: &str, index: usize, field: &str) -> bool {
        self.0.iter().any(|e| {
            e.test == test
                && e.envelope == (stage == "s00-raw")
                && e.index.is_none_or(|i| i == index)
                && e.fields
                    .as_ref()
                    .is_none_or(|f| f.iter().any(|x| x == field))
        })
    }
}
