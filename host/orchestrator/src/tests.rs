use proptest::prelude::*;

use super::*;

/// A pair whose host holds mastership, found the selector on A and has
/// replicated A into B.
fn ready() -> Orchestrator {
    let mut o = Orchestrator::new(Slot::A, Timeouts::default());
    let out = o.handle(0, Event::Mastership { primary: true });
    assert_eq!(out.commands, [Command::ReadSelector]);
    // Replication is the primary's: it starts now, and B is the standby
    // once it holds A's state.
    let out = o.handle(1, Event::SelectorIs(Slot::A));
    assert_eq!(out.commands, [Command::Replicate { from: Slot::A }]);
    assert!(matches!(o.phase(), Phase::Decommissioned { .. }));
    let out = o.handle(2, Event::StandbyReady);
    assert_eq!(out.commands, [Command::StartSampling { to: Slot::B }]);
    assert_eq!(o.phase(), &Phase::Normal);
    o
}

fn manual() -> Event {
    Event::Trigger(Trigger::Manual { by: "test".into() })
}

/// [`ready`], failed over by hand at 10 ms and drained at 20 ms: the write
/// of the selector to B is out.
fn switching() -> Orchestrator {
    let mut o = ready();
    o.handle(10, manual());
    o.handle(20, Event::Drained);
    o
}

/// [`switching`], the write answered at 21 ms: B is verified.
fn verifying() -> Orchestrator {
    let mut o = switching();
    o.handle(21, Event::Flipped);
    o
}

fn unhealthy(slot: Slot) -> Event {
    Event::Health {
        slot,
        healthy: false,
    }
}

fn phases(out: &Outcome) -> Vec<(&'static str, &'static str)> {
    out.audit.iter().map(|a| (a.from, a.to)).collect()
}

#[test]
fn a_failover_prepares_switches_verifies_and_swaps_roles() {
    let mut o = ready();
    let out = o.handle(
        10,
        Event::Trigger(Trigger::Policy {
            explanation: "p_fail 0.9991 >= 0.999 for 3 evaluations".into(),
        }),
    );
    assert_eq!(
        out.commands,
        [
            Command::StopSampling { to: Slot::B },
            Command::Drain { to: Slot::B }
        ]
    );
    assert_eq!(phases(&out), [("normal", "preparing")]);
    assert!(
        out.audit[0].why.contains("p_fail 0.9991"),
        "{:?}",
        out.audit
    );
    assert!(o.trigger().is_some());

    let out = o.handle(20, Event::Drained);
    assert_eq!(out.commands, [Command::Flip { to: Slot::B }]);
    assert_eq!(o.active(), Slot::A, "not active before the write");

    let out = o.handle(21, Event::Flipped);
    assert_eq!(out.commands, [Command::Verify { slot: Slot::B }]);
    assert_eq!(o.active(), Slot::B);

    let out = o.handle(500, Event::VerificationPassed);
    assert_eq!(out.commands, [Command::Replicate { from: Slot::B }]);
    assert_eq!(phases(&out), [("verifying", "decommissioned")]);
    assert!(o.trigger().is_none());

    // A comes back: the new standby, sampled to.
    let refused = o.handle(600, manual());
    assert!(
        refused.refused.is_some(),
        "no failover while decommissioned"
    );
    let out = o.handle(9_000, Event::StandbyReady);
    assert_eq!(out.commands, [Command::StartSampling { to: Slot::A }]);
    assert_eq!(o.phase(), &Phase::Normal);
    assert_eq!(o.active(), Slot::B);

    // And the next failover goes the other way.
    let out = o.handle(10_000, manual());
    assert_eq!(out.commands[1], Command::Drain { to: Slot::A });
}

#[test]
fn triggers_are_refused_without_mastership_during_a_failover_or_without_a_ready_standby() {
    let mut follower = Orchestrator::new(Slot::A, Timeouts::default());
    let out = follower.handle(0, manual());
    assert!(out.commands.is_empty());
    assert!(out.refused.unwrap().contains("not the P4Runtime primary"));

    let mut o = ready();
    o.handle(2, manual());
    let out = o.handle(3, manual());
    assert!(out.commands.is_empty());
    assert!(out.refused.unwrap().contains("preparing"));

    let mut o = ready();
    o.handle(2, unhealthy(Slot::B));
    let out = o.handle(3, manual());
    assert!(out.commands.is_empty());
    assert!(out.refused.unwrap().contains("standby b is not ready"));
    assert_eq!(o.phase(), &Phase::Normal);
}

#[test]
fn a_failed_drain_abandons_the_failover_while_the_active_device_is_healthy() {
    let mut o = ready();
    o.handle(10, manual());
    let out = o.handle(20, Event::DrainFailed("shadow agent unreachable".into()));
    assert_eq!(out.commands, [Command::StartSampling { to: Slot::B }]);
    assert_eq!(o.phase(), &Phase::Normal);
    assert_eq!(o.active(), Slot::A);
    assert!(out.audit[0].why.contains("shadow agent unreachable"));
}

#[test]
fn a_drain_timeout_with_a_failing_active_device_switches_anyway() {
    let mut o = ready();
    o.handle(10, manual());
    o.handle(11, unhealthy(Slot::A));
    assert!(o.handle(1_000, Event::Tick).commands.is_empty(), "not yet");
    let out = o.handle(2_010, Event::Tick);
    assert_eq!(out.commands, [Command::Flip { to: Slot::B }]);
    assert!(out.audit[0].why.contains("without a complete drain"));
}

#[test]
fn a_refused_flip_leaves_the_old_device_active() {
    let mut o = switching();
    let out = o.handle(
        21,
        Event::FlipFailed {
            error: "PERMISSION_DENIED: not primary".into(),
            applied_unknown: false,
        },
    );
    assert_eq!(out.commands, [Command::StartSampling { to: Slot::B }]);
    assert_eq!(o.phase(), &Phase::Normal);
    assert_eq!(o.active(), Slot::A);
}

#[test]
fn a_switch_restart_mid_flip_is_settled_by_reading_the_selector() {
    for (selector, phase) in [(Slot::B, "verifying"), (Slot::A, "normal")] {
        let mut o = switching();
        // No answer: the write may or may not have reached the switch.
        let out = o.handle(1_020, Event::Tick);
        assert_eq!(out.commands, [Command::ReadSelector]);
        assert_eq!(o.phase().name(), "reconciling");
        // Still no answer: asked again, nothing else decided.
        let out = o.handle(2_020, Event::Tick);
        assert_eq!(out.commands, [Command::ReadSelector]);
        let out = o.handle(2_100, Event::SelectorIs(selector));
        assert_eq!(o.phase().name(), phase);
        assert_eq!(o.active(), selector);
        if selector == Slot::B {
            assert_eq!(out.commands, [Command::Verify { slot: Slot::B }]);
        } else {
            assert_eq!(out.commands, [Command::StartSampling { to: Slot::B }]);
            assert!(out.audit[0].why.contains("abandoned"));
        }
    }
}

#[test]
fn verification_that_does_not_pass_in_time_rolls_back_to_a_healthy_old_device() {
    let mut o = verifying();
    assert!(o.handle(3_000, Event::Tick).commands.is_empty());
    let out = o.handle(3_021, Event::Tick);
    assert_eq!(out.commands, [Command::Flip { to: Slot::A }]);
    assert_eq!(o.phase().name(), "rolling-back");
    let out = o.handle(3_030, Event::Flipped);
    assert_eq!(out.commands, [Command::StartSampling { to: Slot::B }]);
    assert_eq!(o.active(), Slot::A);
    assert_eq!(o.phase(), &Phase::Normal);
}

#[test]
fn verification_that_does_not_pass_with_the_old_device_down_keeps_the_new_one() {
    let mut o = verifying();
    o.handle(22, unhealthy(Slot::A));
    let out = o.handle(3_021, Event::Tick);
    assert_eq!(out.commands, [Command::Replicate { from: Slot::B }]);
    assert_eq!(o.active(), Slot::B);
    assert!(out.audit[0].why.contains("a is unhealthy"));
}

#[test]
fn losing_mastership_mid_failover_stops_commanding_and_regaining_it_reads_the_switch() {
    let mut o = switching();
    let out = o.handle(21, Event::Mastership { primary: false });
    // Only the primary replicates.
    assert_eq!(out.commands, [Command::StopReplication]);
    assert_eq!(o.phase(), &Phase::Following);
    // Answers and ticks that arrive now change nothing and command nothing.
    for event in [
        Event::Flipped,
        Event::Tick,
        Event::VerificationPassed,
        manual(),
    ] {
        let out = o.handle(5_000, event);
        assert!(out.commands.is_empty() && out.audit.is_empty());
    }
    // The other host completed the failover: the switch says B.
    assert_eq!(
        o.handle(6_000, Event::Mastership { primary: true })
            .commands,
        [Command::ReadSelector]
    );
    let out = o.handle(6_001, Event::SelectorIs(Slot::B));
    assert_eq!(out.commands, [Command::Verify { slot: Slot::B }]);
    assert_eq!(o.active(), Slot::B);
}

#[test]
fn audit_records_serialise_as_json_lines() {
    let mut o = ready();
    let out = o.handle(10, manual());
    let line = serde_json::to_string(&out.audit[0]).unwrap();
    assert_eq!(
        line,
        r#"{"at_ms":10,"from":"normal","to":"preparing","active":"a","why":"manual failover by test"}"#
    );
    let command = serde_json::to_string(&out.commands[1]).unwrap();
    assert_eq!(command, r#"{"command":"drain","to":"b"}"#);
}

/// What the daemon could report, chosen at random.
fn event() -> impl Strategy<Value = u8> {
    0u8..12
}

#[test]
fn a_write_answered_late_is_read_back_and_no_second_write_races_it() {
    let mut o = switching();
    // The write times out; the read-back says it has not happened.
    o.handle(1_020, Event::Tick);
    o.handle(1_030, Event::SelectorIs(Slot::A));
    assert_eq!(o.phase(), &Phase::Normal);
    // While that write may still land, no new failover writes again.
    let out = o.handle(1_040, manual());
    assert!(out.refused.unwrap().contains("unanswered"));
    // It lands after all: the switch is read again and the flip verified.
    let out = o.handle(1_050, Event::Flipped);
    assert_eq!(out.commands, [Command::ReadSelector]);
    let out = o.handle(1_060, Event::SelectorIs(Slot::B));
    assert_eq!(out.commands, [Command::Verify { slot: Slot::B }]);
    assert_eq!(o.active(), Slot::B);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4_000))]

    /// Whatever happens, in whatever order: commands only while this host
    /// is the P4Runtime primary; at most one selector write outstanding;
    /// and whenever the machine settles (normal, verifying or
    /// decommissioned) the device it believes active is the one the
    /// switch forwards to.
    #[test]
    fn the_machine_agrees_with_the_switch_and_commands_only_as_primary(
        script in proptest::collection::vec((event(), 0u8..4), 1..80)
    ) {
        let mut o = Orchestrator::new(Slot::A, Timeouts::default());
        let mut switch = Slot::A;
        let mut master = false;
        // A selector write the switch has been asked for and not answered.
        let mut pending_flip: Option<Slot> = None;
        let mut reads = 0u32;
        let mut now = 0i64;
        for (kind, arg) in script {
            now += 400;
            let event = match kind {
                0 => manual(),
                1 => Event::Drained,
                2 => Event::DrainFailed("x".into()),
                3 => match pending_flip.take() {
                    // The switch answers the outstanding write.
                    Some(to) if arg < 2 => { switch = to; Event::Flipped }
                    Some(to) if arg == 2 => {
                        // Lost mid-write; the switch took it.
                        switch = to;
                        Event::FlipFailed { error: "reset".into(), applied_unknown: true }
                    }
                    Some(_) => Event::FlipFailed { error: "refused".into(), applied_unknown: false },
                    None => Event::Tick,
                },
                4 if reads > 0 => { reads -= 1; Event::SelectorIs(switch) }
                5 => Event::VerificationPassed,
                6 => Event::Health { slot: if arg % 2 == 0 { Slot::A } else { Slot::B }, healthy: arg < 2 },
                7 => Event::StandbyReady,
                8 => { master = arg != 0; Event::Mastership { primary: master } }
                _ => { now += i64::from(arg) * 1_000; Event::Tick }
            };
            let out = o.handle(now, event);
            if !master {
                // Nothing but stopping its replication.
                prop_assert!(
                    out.commands.iter().all(|c| *c == Command::StopReplication),
                    "commands without mastership: {:?}",
                    out
                );
            }
            for command in &out.commands {
                match command {
                    Command::Flip { to } => {
                        prop_assert!(pending_flip.is_none(), "two writes outstanding");
                        pending_flip = Some(*to);
                    }
                    Command::ReadSelector => reads += 1,
                    _ => {}
                }
            }
            if matches!(o.phase(), Phase::Normal | Phase::Verifying { .. } | Phase::Decommissioned { .. }) {
                prop_assert_eq!(o.active(), switch, "phase {:?}", o.phase());
            }
        }
    }
}
