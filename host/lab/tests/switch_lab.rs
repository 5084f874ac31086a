//! The host's P4Runtime client drives `umbra switch` on real interfaces in
//! network namespaces: pipeline push, steering and sampling installed, one
//! write flips the selector, and the packets follow (needs root).

use tokio_util::sync::CancellationToken;
use umbra_lab::switch_lab::{self, SwitchLabOptions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_write_moves_the_traffic_to_the_shadow_without_loss() {
    let options = SwitchLabOptions {
        probes: 600,
        sample_one_in_n: 5,
        ..SwitchLabOptions::default()
    };
    let report = switch_lab::run(options, CancellationToken::new(), |line| {
        eprintln!("{line}")
    })
    .await
    .expect("the switch lab runs (as root, with iproute2, ethtool, ping)");
    eprintln!("{}", report.summary());

    // Nothing is lost across the flip.
    assert_eq!(report.probes_sent, 600);
    assert_eq!(report.probes_answered, report.probes_sent, "{report:?}");

    // Before the flip the primary carried the traffic both ways, the shadow none.
    assert!(report.primary_before_flip.to_server >= 200, "{report:?}");
    assert!(report.primary_before_flip.to_client >= 200, "{report:?}");
    assert_eq!(report.shadow_before_flip.to_server, 0, "{report:?}");
    assert_eq!(report.shadow_before_flip.to_client, 0, "{report:?}");

    // After it the shadow carries it both ways; the primary sees at most the
    // packets between the counter snapshot and the flip.
    assert!(report.shadow_after_flip.to_server >= 200, "{report:?}");
    assert!(report.shadow_after_flip.to_client >= 200, "{report:?}");
    assert!(report.primary_after_flip.to_server <= 5, "{report:?}");
    assert!(report.primary_after_flip.to_client <= 5, "{report:?}");

    // 1-in-5 sampling of ~1,200 service packets: 240 expected, sd ≈ 13.9;
    // ±5 sd keeps a false failure below one in a million runs.
    let expected = report.service_packets as f64 / 5.0;
    let sd = (report.service_packets as f64 * 0.2 * 0.8).sqrt();
    assert!(
        (report.mirrored as f64 - expected).abs() <= 5.0 * sd,
        "mirrored {} of {} service packets",
        report.mirrored,
        report.service_packets
    );
}
