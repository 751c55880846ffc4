//! How many secrets each rule replaced: kept per scanned buffer, per KE
//! line and per bundle file, and named only when a manifest is written.

use super::rules::{BUILTIN, Rule};
use std::collections::BTreeMap;

/// Replacements per rule: the built-in rules, then the site rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    builtin: [u64; BUILTIN],
    /// Grown only when a site rule replaces something.
    site: Vec<u64>,
}

/// The name of the `i`-th site rule (0-based): `site-1`, `site-2`, …
pub fn site_rule_name(i: usize) -> String {
    format!("site-{}", i + 1)
}

impl Tally {
    pub fn add_rule(&mut self, rule: Rule, n: u64) {
        self.builtin[rule.index()] += n;
    }

    /// Adds to rule `index`: a built-in rule's index, or `BUILTIN + i` for
    /// the `i`-th site rule.
    pub(crate) fn add_index(&mut self, index: usize, n: u64) {
        match index.checked_sub(BUILTIN) {
            None => self.builtin[index] += n,
            Some(i) => {
                if self.site.len() <= i {
                    self.site.resize(i + 1, 0);
                }
                self.site[i] += n;
            }
        }
    }

    pub fn add(&mut self, other: &Tally) {
        for (a, b) in self.builtin.iter_mut().zip(other.builtin) {
            *a += b;
        }
        for (i, &n) in other.site.iter().enumerate() {
            if n > 0 {
                self.add_index(BUILTIN + i, n);
            }
        }
    }

    pub fn total(&self) -> u64 {
        self.builtin.iter().sum::<u64>() + self.site.iter().sum::<u64>()
    }

    pub fn is_empty(&self) -> bool {
        self.total() == 0
    }

    pub fn get(&self, rule: Rule) -> u64 {
        self.builtin[rule.index()]
    }

    /// The `i`-th site rule's count.
    pub fn site(&self, i: usize) -> u64 {
        self.site.get(i).copied().unwrap_or(0)
    }

    /// Rules that replaced something, by name.
    pub fn names(&self) -> BTreeMap<String, u64> {
        let builtin = Rule::ALL
            .iter()
            .map(|r| (r.name().to_string(), self.get(*r)));
        let site = self
            .site
            .iter()
            .enumerate()
            .map(|(i, &n)| (site_rule_name(i), n));
        builtin.chain(site).filter(|(_, n)| *n > 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_add_by_rule_and_name_only_what_counted() {
        let mut a = Tally::default();
        a.add_rule(Rule::Jwt, 2);
        a.add_index(BUILTIN + 1, 3);
        let mut b = Tally::default();
        b.add_rule(Rule::Jwt, 1);
        b.add_rule(Rule::Cookie, 4);
        b.add(&a);
        assert_eq!(b.total(), 10);
        assert_eq!((b.get(Rule::Jwt), b.site(1), b.site(0)), (3, 3, 0));
        let names: Vec<(String, u64)> = b.names().into_iter().collect();
        assert_eq!(
            names,
            vec![
                ("cookie".to_string(), 4),
                ("jwt".to_string(), 3),
                ("site-2".to_string(), 3)
            ]
        );
        assert!(Tally::default().is_empty());
    }
}
