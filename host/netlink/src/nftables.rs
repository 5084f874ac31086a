//! The nftables ruleset as nft JSON, read and applied through the `nft` CLI
//! (libnftables' own front end) spawned on the namespace's thread, so it runs
//! in the namespace.

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::netns::NetNs;

/// nftables operations on one namespace; see [`NetNs::nftables`].
#[derive(Debug, Clone, Copy)]
pub struct Nftables<'a> {
    ns: &'a NetNs,
}

impl NetNs {
    /// nftables operations in this namespace.
    pub fn nftables(&self) -> Nftables<'_> {
        Nftables { ns: self }
    }
}

impl Nftables<'_> {
    /// The whole ruleset: the output of `nft -j list ruleset`
    /// (`{"nftables": [ {"metainfo": ...}, {"table": ...}, ... ]}`).
    ///
    /// # Errors
    /// [`Error::Command`] if `nft` fails, [`Error::Json`] if its output is
    /// not JSON.
    pub fn ruleset(&self) -> Result<Value> {
        let out = self.nft(&["-j", "list", "ruleset"], None)?;
        serde_json::from_str(&out).map_err(|e| Error::Json(e.to_string()))
    }

    /// Replaces table `family name` with the table's objects found in
    /// `ruleset` (nft JSON as returned by [`Nftables::ruleset`], typically
    /// from another namespace), in one nft transaction: either the new table
    /// is in place or the old one is untouched.
    ///
    /// The transaction is `add table; delete table; add <objects>`. A
    /// `flush table` alone would only empty the chains, leaving chains, sets
    /// and set elements that the new ruleset no longer has; deleting the
    /// table inside the same transaction replaces it exactly. Object
    /// handles are dropped because they name positions in the source
    /// namespace.
    ///
    /// # Errors
    /// [`Error::Json`] if `ruleset` has no `nftables` array or does not
    /// contain the table; [`Error::Command`] if nft rejects the
    /// transaction (nothing is changed then).
    pub fn apply_table(&self, family: &str, name: &str, ruleset: &Value) -> Result<()> {
        let tx = table_transaction(family, name, ruleset)?;
        self.nft(&["-j", "-f", "-"], Some(tx.to_string()))?;
        Ok(())
    }

    fn nft(&self, args: &[&str], stdin: Option<String>) -> Result<String> {
        let args: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        self.ns.with_state(move |_| run_nft(&args, stdin))
    }
}

fn run_nft(args: &[String], stdin: Option<String>) -> Result<String> {
    let command = format!("nft {}", args.join(" "));
    let failed = |detail: String| Error::Command {
        command: command.clone(),
        detail,
    };
    let mut child = Command::new("nft")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(format!("cannot run: {e}")))?;
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("piped");
        pipe.write_all(input.as_bytes())
            .map_err(|e| failed(format!("writing stdin: {e}")))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("waiting: {e}")))?;
    if !out.status.success() {
        return Err(failed(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    String::from_utf8(out.stdout).map_err(|e| failed(format!("output not UTF-8: {e}")))
}

/// The objects of table `family name` in a listing, without handles, in
/// listing order (table first).
///
/// # Errors
/// [`Error::Json`] if `ruleset` has no `nftables` array or no such table.
pub fn table_objects(family: &str, name: &str, ruleset: &Value) -> Result<Vec<Value>> {
    let items = ruleset
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Json("no \"nftables\" array".into()))?;
    let mut out = Vec::new();
    for item in items {
        let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        if kind == "metainfo" {
            continue;
        }
        let in_table = body.get("family").and_then(Value::as_str) == Some(family)
            && if kind == "table" {
                body.get("name").and_then(Value::as_str) == Some(name)
            } else {
                body.get("table").and_then(Value::as_str) == Some(name)
            };
        if in_table {
            let mut body = body.clone();
            if let Some(obj) = body.as_object_mut() {
                obj.remove("handle");
            }
            out.push(json!({ kind.as_str(): body }));
        }
    }
    if !out.iter().any(|o| o.get("table").is_some()) {
        return Err(Error::Json(format!("ruleset has no table {family} {name}")));
    }
    Ok(out)
}

fn table_transaction(family: &str, name: &str, ruleset: &Value) -> Result<Value> {
    let table = json!({ "family": family, "name": name });
    let mut cmds = vec![
        json!({ "add": { "table": table.clone() } }),
        json!({ "delete": { "table": table } }),
    ];
    cmds.extend(
        table_objects(family, name, ruleset)?
            .into_iter()
            .map(|obj| json!({ "add": obj })),
    );
    Ok(json!({ "nftables": cmds }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transaction_replaces_only_the_named_table_without_handles() {
        let listing = json!({"nftables": [
            {"metainfo": {"version": "1.0.6"}},
            {"table": {"family": "inet", "name": "fw", "handle": 1}},
            {"table": {"family": "ip", "name": "other", "handle": 2}},
            {"chain": {"family": "inet", "table": "fw", "name": "fwd", "handle": 1,
                       "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
            {"chain": {"family": "ip", "table": "other", "name": "x", "handle": 1}},
            {"rule": {"family": "inet", "table": "fw", "chain": "fwd", "handle": 3,
                      "expr": [{"accept": null}]}},
        ]});
        let tx = table_transaction("inet", "fw", &listing).unwrap();
        let cmds = tx["nftables"].as_array().unwrap();
        assert_eq!(cmds.len(), 5);
        assert_eq!(cmds[0]["add"]["table"]["name"], "fw");
        assert_eq!(cmds[1]["delete"]["table"]["name"], "fw");
        assert_eq!(cmds[3]["add"]["chain"]["name"], "fwd");
        assert!(cmds[4]["add"]["rule"].get("handle").is_none());
        assert!(!tx.to_string().contains("other"));
        assert!(table_transaction("inet", "missing", &listing).is_err());
    }
}
