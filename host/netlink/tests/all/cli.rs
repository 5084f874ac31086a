//! Parsers for the Linux CLIs' output, the independent check on our netlink
//! encoding.

use std::net::IpAddr;

use umbra_netlink::{ConntrackTuple, L4Tuple};

use crate::lab::run_in;

/// One line of `conntrack -L -o extended`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliEntry {
    pub timeout: u32,
    pub state: Option<String>,
    pub original: ConntrackTuple,
    pub reply: ConntrackTuple,
    pub mark: u32,
    pub zone: u16,
    pub flags: Vec<String>,
}

/// Lists the conntrack table of `ns` with the conntrack CLI.
pub fn conntrack_list(ns: &str) -> Vec<CliEntry> {
    // IPv4 and IPv6: the CLI lists one family unless asked.
    let mut out = Vec::new();
    for family in ["ipv4", "ipv6"] {
        let text = run_in(ns, &["conntrack", "-L", "-o", "extended", "-f", family]);
        out.extend(
            text.lines()
                .filter(|l| !l.trim().is_empty())
                .map(parse_line),
        );
    }
    out
}

fn parse_line(line: &str) -> CliEntry {
    let toks: Vec<&str> = line.split_whitespace().collect();
    // ipv4 2 tcp 6 TIMEOUT [STATE] key=value ... [FLAGS] ...
    let protocol: u8 = toks[3].parse().expect("protocol number");
    let timeout: u32 = toks[4].parse().expect("timeout");
    let mut rest = &toks[5..];
    let state = if !rest[0].contains('=') && !rest[0].starts_with('[') {
        let s = rest[0].to_owned();
        rest = &rest[1..];
        Some(s)
    } else {
        None
    };
    let mut tuples: Vec<Vec<(&str, &str)>> = Vec::new();
    let mut flags = Vec::new();
    let (mut mark, mut zone) = (0, 0);
    for tok in rest {
        if let Some(flag) = tok.strip_prefix('[') {
            flags.push(flag.trim_end_matches(']').to_owned());
            continue;
        }
        let Some((k, v)) = tok.split_once('=') else {
            continue;
        };
        match k {
            "src" => tuples.push(vec![(k, v)]),
            "dst" | "sport" | "dport" | "type" | "code" | "id" => {
                tuples.last_mut().expect("src first").push((k, v));
            }
            "mark" => mark = v.parse().expect("mark"),
            "zone" => zone = v.parse().expect("zone"),
            _ => {}
        }
    }
    assert_eq!(tuples.len(), 2, "two tuples in {line:?}");
    let tuple = |kv: &[(&str, &str)]| {
        let get = |key: &str| kv.iter().find(|(k, _)| *k == key).map(|(_, v)| *v);
        let l4 = match (get("sport"), get("type")) {
            (Some(sport), _) => L4Tuple::Ports {
                src: sport.parse().unwrap(),
                dst: get("dport").unwrap().parse().unwrap(),
            },
            (None, Some(kind)) => L4Tuple::Icmp {
                id: get("id").unwrap().parse().unwrap(),
                kind: kind.parse().unwrap(),
                code: get("code").unwrap().parse().unwrap(),
            },
            _ => L4Tuple::None,
        };
        ConntrackTuple {
            src: get("src").unwrap().parse::<IpAddr>().unwrap(),
            dst: get("dst").unwrap().parse::<IpAddr>().unwrap(),
            protocol,
            l4,
        }
    };
    CliEntry {
        timeout,
        state,
        original: tuple(&tuples[0]),
        reply: tuple(&tuples[1]),
        mark,
        zone,
        flags,
    }
}

#[test]
fn conntrack_cli_lines_parse() {
    let e = parse_line(
        "ipv4     2 tcp      6 431999 ESTABLISHED src=198.18.1.2 dst=198.18.2.2 sport=44394 dport=39231 src=198.18.2.2 dst=198.18.2.1 sport=39231 dport=44394 [ASSURED] mark=42 zone=3 use=1",
    );
    assert_eq!(e.state.as_deref(), Some("ESTABLISHED"));
    assert_eq!(e.reply.dst, "198.18.2.1".parse::<IpAddr>().unwrap());
    assert_eq!((e.mark, e.zone, e.timeout), (42, 3, 431_999));
    assert_eq!(e.flags, vec!["ASSURED".to_owned()]);
    let i = parse_line(
        "ipv4     2 icmp     1 29 src=198.18.0.1 dst=198.18.0.2 type=8 code=0 id=77 [UNREPLIED] src=198.18.0.2 dst=198.18.0.1 type=0 code=0 id=77 mark=0 use=1",
    );
    assert_eq!(
        i.original.l4,
        L4Tuple::Icmp {
            id: 77,
            kind: 8,
            code: 0
        }
    );
    assert_eq!(i.state, None);
}
