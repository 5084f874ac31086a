//! Routes over rtnetlink, checked against `ip -j route show table N`.

use std::collections::BTreeSet;

use serde_json::Value;
use umbra_netlink::{Errno, Route};

use crate::lab::{Lab, run};

const TABLE: u32 = 100;

/// `(dst, gateway, dev, metric)` as `ip -j route` reports them.
fn ip_routes(ns: &str) -> BTreeSet<(String, Option<String>, Option<String>, u32)> {
    let out = run(&[
        "ip",
        "-n",
        ns,
        "-j",
        "route",
        "show",
        "table",
        &TABLE.to_string(),
    ]);
    let routes: Vec<Value> = serde_json::from_str(&out).unwrap();
    routes
        .iter()
        .map(|r| {
            let dst = r["dst"].as_str().unwrap();
            let dst = match dst {
                "default" => "0.0.0.0/0".to_owned(),
                d if d.contains('/') => d.to_owned(),
                d => format!("{d}/32"),
            };
            (
                dst,
                r["gateway"].as_str().map(str::to_owned),
                r["dev"].as_str().map(str::to_owned),
                r["metric"].as_u64().unwrap_or(0) as u32,
            )
        })
        .collect()
}

fn ours(routes: &[Route]) -> BTreeSet<(String, Option<String>, Option<String>, u32)> {
    routes
        .iter()
        .map(|r| {
            (
                r.destination.to_string(),
                r.gateway.map(|g| g.to_string()),
                r.interface.clone(),
                r.metric,
            )
        })
        .collect()
}

fn route(dst: &str, gw: Option<&str>, dev: &str, metric: u32) -> Route {
    Route {
        table: TABLE,
        destination: dst.parse().unwrap(),
        gateway: gw.map(|g| g.parse().unwrap()),
        interface: Some(dev.to_owned()),
        metric,
    }
}

#[test]
fn routes_add_replace_delete_match_ip_route() {
    let mut lab = Lab::new();
    let a = lab.ns("rt-a");
    let b = lab.ns("rt-b");
    lab.link(&a, "v0", "198.18.10.1/24", &b, "v1", "198.18.10.2/24");
    let ns = lab.handle(&a);
    let routes = ns.routes();
    assert!(routes.dump(TABLE).unwrap().is_empty());

    let wanted = vec![
        route("198.18.20.0/24", Some("198.18.10.2"), "v0", 10),
        route("198.18.21.0/24", None, "v0", 0),
        route("198.18.22.7/32", Some("198.18.10.3"), "v0", 0),
        route("0.0.0.0/0", Some("198.18.10.254"), "v0", 5),
    ];
    for r in &wanted {
        routes.add(r).unwrap();
    }
    let dumped = routes.dump(TABLE).unwrap();
    assert_eq!(ours(&dumped), ours(&wanted));
    assert_eq!(ip_routes(&a), ours(&wanted));
    assert!(dumped.iter().all(|r| r.table == TABLE));
    // The main table is not mixed in.
    assert!(
        routes
            .dump(254)
            .unwrap()
            .iter()
            .all(|r| r.destination.to_string() != "198.18.20.0/24")
    );

    // Adding again is EEXIST; replace moves the next hop in place.
    let err = routes.add(&wanted[0]).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::EEXIST), "{err}");
    let moved = route("198.18.20.0/24", Some("198.18.10.9"), "v0", 10);
    routes.replace(&moved).unwrap();
    let mut expected = wanted.clone();
    expected[0] = moved.clone();
    assert_eq!(ip_routes(&a), ours(&expected));

    // Delete, then delete again: ESRCH with the kernel's meaning.
    routes.delete(&moved).unwrap();
    expected.remove(0);
    assert_eq!(ip_routes(&a), ours(&expected));
    let err = routes.delete(&moved).unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ESRCH), "{err}");
    assert!(err.to_string().contains("no such route"), "{err}");

    // An unreachable gateway and an unknown interface are refused.
    let err = routes
        .add(&route("198.18.30.0/24", Some("198.18.99.1"), "v0", 0))
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno::ENETUNREACH), "{err}");
    let err = routes
        .add(&route("198.18.30.0/24", None, "nope0", 0))
        .unwrap_err();
    assert!(
        matches!(err, umbra_netlink::Error::InvalidArgument(_)),
        "{err}"
    );
    assert_eq!(ip_routes(&a), ours(&expected));
}
