//! nftables ruleset read and atomic table replacement, checked by re-listing.

use serde_json::Value;
use umbra_netlink::nftables::table_objects;

use crate::lab::{Lab, run_in};

const RULES_V1: &str = r#"
table inet fw {
    set blocked { type ipv4_addr; elements = { 198.18.66.1, 198.18.66.2 } }
    chain fwd_chain {
        type filter hook forward priority 0; policy drop;
        ct state established,related accept
        ip saddr @blocked drop
        tcp dport { 80, 443 } accept
        jump extra
    }
    chain extra { udp dport 53 counter accept; }
}
table ip keep { chain c { type filter hook input priority 0; accept; }; }
"#;

fn table(ns: &umbra_netlink::NetNs) -> Vec<Value> {
    table_objects("inet", "fw", &ns.nftables().ruleset().unwrap()).unwrap()
}

/// Objects with counters zeroed, so live counters do not spoil a compare.
fn normalized(objs: Vec<Value>) -> String {
    let mut v = Value::Array(objs);
    zero_counters(&mut v);
    v.to_string()
}

fn zero_counters(v: &mut Value) {
    match v {
        Value::Object(o) => {
            for (k, val) in o.iter_mut() {
                if k == "packets" || k == "bytes" {
                    *val = Value::from(0);
                } else {
                    zero_counters(val);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(zero_counters),
        _ => {}
    }
}

#[test]
fn table_is_copied_replaced_and_left_alone_on_error() {
    let mut lab = Lab::new();
    let a = lab.ns("nft-a");
    let b = lab.ns("nft-b");
    let file = std::env::temp_dir().join(format!("{a}.nft"));
    std::fs::write(&file, RULES_V1).unwrap();
    let loaded = std::panic::catch_unwind(|| run_in(&a, &["nft", "-f", file.to_str().unwrap()]));
    let _ = std::fs::remove_file(&file);
    loaded.unwrap();
    run_in(
        &b,
        &[
            "nft",
            "table ip keep { chain other { type filter hook output priority 0; accept; }; }",
        ],
    );
    run_in(&b, &["nft", "table inet fw { chain stale { }; }"]);
    let (src, dst) = (lab.handle(&a), lab.handle(&b));

    let ruleset = src.nftables().ruleset().unwrap();
    dst.nftables().apply_table("inet", "fw", &ruleset).unwrap();
    assert_eq!(normalized(table(&dst)), normalized(table(&src)));
    let listing = run_in(&b, &["nft", "list", "table", "inet", "fw"]);
    assert!(
        listing.contains("198.18.66.2") && listing.contains("jump extra"),
        "{listing}"
    );
    assert!(!listing.contains("stale"), "old chains are gone: {listing}");
    // Other tables of the destination are untouched, and A's `ip keep` was not copied.
    let keep = run_in(&b, &["nft", "list", "table", "ip", "keep"]);
    assert!(
        keep.contains("chain other") && !keep.contains("chain c "),
        "{keep}"
    );

    // A new version without the `extra` chain replaces the table exactly.
    run_in(&a, &["nft", "flush table inet fw"]);
    run_in(&a, &["nft", "delete chain inet fw extra"]);
    run_in(
        &a,
        &["nft", "add rule inet fw fwd_chain tcp dport 22 accept"],
    );
    dst.nftables()
        .apply_table("inet", "fw", &src.nftables().ruleset().unwrap())
        .unwrap();
    assert_eq!(normalized(table(&dst)), normalized(table(&src)));
    let listing = run_in(&b, &["nft", "list", "table", "inet", "fw"]);
    assert!(
        !listing.contains("extra") && listing.contains("dport 22"),
        "{listing}"
    );

    // A broken ruleset (jump to a missing chain) fails as a whole.
    let before = normalized(table(&dst));
    let mut broken = src.nftables().ruleset().unwrap();
    let items = broken["nftables"].as_array_mut().unwrap();
    items.push(
        serde_json::json!({"rule": {"family": "inet", "table": "fw", "chain": "fwd_chain",
        "expr": [{"jump": {"target": "missing"}}]}}),
    );
    let err = dst
        .nftables()
        .apply_table("inet", "fw", &broken)
        .unwrap_err();
    assert!(matches!(err, umbra_netlink::Error::Command { .. }), "{err}");
    assert_eq!(
        normalized(table(&dst)),
        before,
        "failed transaction changed nothing"
    );
}
