//! Namespace handles: operations run in the target namespace, never in the
//! caller's.

use std::os::unix::fs::MetadataExt;

use umbra_netlink::{Error, NetNs, NsTarget};

use crate::lab::Lab;

fn net_inode(path: &str) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn work_runs_inside_the_namespace_and_the_caller_stays_put() {
    let mut lab = Lab::new();
    let name = lab.ns("handle");
    let before = net_inode("/proc/thread-self/ns/net");
    let target = net_inode(&format!("/run/netns/{name}"));
    assert_ne!(before, target);

    for ns in [
        NetNs::open(NsTarget::Named(name.clone())).unwrap(),
        NetNs::open(NsTarget::Path(format!("/run/netns/{name}").into())).unwrap(),
    ] {
        let inside = ns.run(|| net_inode("/proc/thread-self/ns/net")).unwrap();
        assert_eq!(inside, target);
        assert_eq!(net_inode("/proc/thread-self/ns/net"), before);
    }
    let current = NetNs::open(NsTarget::Current).unwrap();
    assert_eq!(
        current
            .run(|| net_inode("/proc/thread-self/ns/net"))
            .unwrap(),
        before
    );

    let err = NetNs::named("umbra-nl-does-not-exist").unwrap_err();
    assert!(matches!(err, Error::Namespace { .. }), "{err}");
}
