#!/usr/bin/env python3
"""Writes the recorded cases of Umbra's default policies (policies/cases/*.json).

The observations are synthesized to look like what the host records in the
lab (1 s ticks, a 60-sample window, 8 metrics per device, the faults the lab
injects); the failover inputs exercise the OR rule, hysteresis, cooldown and
the cap. Deterministic: a fixed seed per case, values rounded, so running it
again rewrites the same bytes. Standard library only.

    python3 policies/cases/synthesize.py
"""

import json
import random
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
T0 = 1_700_000_000_000  # 2023-11-14T22:13:20Z
N = 60
TIMES = [T0 + 1000 * i for i in range(N)]
NOW = TIMES[-1]

# (name, mean, stddev, decimals) of each metric's baseline, per device. The
# shadow sees the 2 % mirrored sample, so its traffic figures are smaller.
PRIMARY = [
    ("cpu", 35.0, 5.0, 2),
    ("memory", 55.0, 3.0, 2),
    ("rx-pps", 120000.0, 8000.0, 0),
    ("tx-pps", 118000.0, 8000.0, 0),
    ("drops", 2.0, 1.5, 2),
    ("sessions", 4000.0, 300.0, 0),
    ("http-5xx-rate", 0.002, 0.0015, 5),
    ("health-latency-ms", 40.0, 8.0, 1),
]
SHADOW = [
    ("cpu", 8.0, 2.0, 2),
    ("memory", 30.0, 2.0, 2),
    ("rx-pps", 2400.0, 200.0, 0),
    ("tx-pps", 60.0, 12.0, 0),
    ("drops", 0.5, 0.5, 2),
    ("sessions", 4000.0, 300.0, 0),
    ("http-5xx-rate", 0.002, 0.0015, 5),
    ("health-latency-ms", 42.0, 8.0, 1),
]
BASELINE_SAMPLES = 2016  # a week of 5-minute buckets


def device(spec, rng, shapes=None, noise=0.5, missing=None, baselines=None):
    """One device window: noise around each baseline (`noise` stddevs), plus
    `shapes[name](i, value) -> value` where a fault shapes the metric."""
    shapes = shapes or {}
    missing = missing or {}
    baselines = baselines or {}
    series = []
    for name, mean, stddev, decimals in spec:
        values = []
        for i in range(N):
            v = rng.gauss(mean, noise * stddev)
            if name in shapes:
                v = shapes[name](i, v)
            values.append(max(0.0, round(v, decimals)))
        gaps = sorted(missing.get(name, []))
        for i in gaps:  # carried forward from the previous sample
            values[i] = values[i - 1] if i > 0 else values[i]
        entry = {"name": name, "values": values}
        if gaps:
            entry["missing"] = gaps
        entry["baseline"] = baselines.get(
            name, {"mean": mean, "stddev": stddev, "samples": BASELINE_SAMPLES}
        )
        series.append(entry)
    return {"series": series}


def health(web_latency=38.0, web_ok=True, success=600, server_error=1, db_ok=True, db_latency=3.5):
    return [
        {
            "name": "web",
            "ok": web_ok,
            "latency_ms": web_latency,
            "status_classes": {
                "informational": 0,
                "success": success,
                "redirect": 4,
                "client_error": 3,
                "server_error": server_error,
            },
        },
        {
            "name": "postgres",
            "ok": db_ok,
            "latency_ms": db_latency,
            "status_classes": {
                "informational": 0,
                "success": 0,
                "redirect": 0,
                "client_error": 0,
                "server_error": 0,
            },
            "db_connected": db_ok,
        },
    ]


def mirror(flows=410, resets=3):
    return {"packets": 144000, "bytes": 97000000, "flows": flows, "tcp_resets": resets}


def prediction(p):
    return {"probability": p, "horizon_ms": 30000, "model_version": "umbra-gru-1"}


def ramp(start, end, v0, v1):
    """Adds a ramp from +v0 at sample `start` to +v1 at sample `end`, held after."""

    def shape(i, v):
        if i < start:
            return v
        f = min(1.0, (i - start) / (end - start))
        return v + v0 + f * (v1 - v0)

    return shape


def observation(primary, shadow, health_checks, mirror_stats, pred):
    obs = {
        "now_ms": NOW,
        "timestamps_ms": TIMES,
        "primary": primary,
        "shadow": shadow,
        "health": health_checks,
        "mirror": mirror_stats,
    }
    if pred is not None:
        obs["prediction"] = pred
    return {"observation": obs}


def observation_cases():
    cases = {}

    rng = random.Random(1)
    cases["steady-state"] = (
        "Quiet steady state: every metric of both devices within its baseline, "
        "health checks fine, predictor calm.",
        observation(device(PRIMARY, rng), device(SHADOW, rng), health(), mirror(), prediction(0.03)),
    )

    rng = random.Random(2)
    cases["cpu-ramp-with-5xx"] = (
        "CPU exhaustion ramp on the primary from t-35 s, with the 5xx rate and the "
        "health-check latency rising with it; the shadow is quiet.",
        observation(
            device(
                PRIMARY,
                rng,
                shapes={
                    "cpu": ramp(25, 59, 0.0, 50.0),
                    "http-5xx-rate": ramp(32, 59, 0.0, 0.045),
                    "health-latency-ms": ramp(30, 59, 0.0, 160.0),
                },
            ),
            device(SHADOW, rng),
            health(web_latency=212.0, success=560, server_error=31),
            mirror(resets=9),
            prediction(0.64),
        ),
    )

    rng = random.Random(3)
    cases["memory-leak"] = (
        "Slow memory leak on the primary: memory already 3 sigma above its baseline "
        "and still climbing 0.1 % a second; nothing else moves yet.",
        observation(
            device(PRIMARY, rng, shapes={"memory": lambda i, v: v + 9.0 + 0.1 * i}),
            device(SHADOW, rng),
            health(),
            mirror(),
            prediction(0.31),
        ),
    )

    rng = random.Random(4)
    burst = lambda scale: (lambda i, v: v * scale if 24 <= i <= 29 else v)  # noqa: E731
    cases["benign-spike"] = (
        "A traffic burst 30 s ago, seen by both devices (the mirrored sample too), "
        "already over: nothing to act on.",
        observation(
            device(
                PRIMARY,
                rng,
                shapes={"rx-pps": burst(1.5), "tx-pps": burst(1.5), "cpu": burst(1.6)},
            ),
            device(SHADOW, rng, shapes={"rx-pps": burst(1.5), "cpu": burst(1.3)}),
            health(),
            mirror(),
            prediction(0.05),
        ),
    )

    rng = random.Random(5)
    cases["missing-samples"] = (
        "Telemetry gaps: cpu lost samples 40-52 (carried forward), memory lost most "
        "of its window, sessions has no baseline yet; no prediction this tick.",
        observation(
            device(
                PRIMARY,
                rng,
                shapes={"drops": ramp(45, 59, 0.0, 6.0)},
                missing={
                    "cpu": list(range(40, 53)),
                    "memory": [i for i in range(N) if i % 20 != 0],
                },
                baselines={"sessions": {"mean": 0.0, "stddev": 0.0, "samples": 0}},
            ),
            device(SHADOW, rng),
            health(),
            mirror(),
            None,
        ),
    )

    rng = random.Random(6)
    cases["db-connection-failure"] = (
        "The database connection of the primary's service drops: the DB check "
        "fails, the web check slows down and returns 5xx.",
        observation(
            device(
                PRIMARY,
                rng,
                shapes={
                    "http-5xx-rate": ramp(50, 55, 0.0, 0.12),
                    "health-latency-ms": ramp(50, 55, 0.0, 420.0),
                },
            ),
            device(SHADOW, rng),
            health(web_latency=780.0, web_ok=False, success=430, server_error=88, db_ok=False, db_latency=2000.0),
            mirror(resets=61),
            prediction(0.71),
        ),
    )

    rng = random.Random(7)
    surge = lambda extra: ramp(20, 59, 0.0, extra)  # noqa: E731
    cases["traffic-surge"] = (
        "A legitimate traffic surge: rx/tx pps climb on the primary and, in the "
        "mirrored sample, on the shadow alike.",
        observation(
            device(PRIMARY, rng, shapes={"rx-pps": surge(60000.0), "tx-pps": surge(59000.0), "cpu": surge(12.0)}),
            device(SHADOW, rng, shapes={"rx-pps": surge(1200.0), "cpu": surge(3.0)}),
            health(web_latency=55.0),
            mirror(flows=640, resets=4),
            prediction(0.12),
        ),
    )
    rng = random.Random(8)
    collapse = lambda i, v: v * 0.02 if i >= 52 else v  # noqa: E731
    cases["hard-failure"] = (
        "The primary stops forwarding 7 s ago: its rx/tx pps collapse and the web "
        "check fails, while the mirrored sample still sees the clients' traffic.",
        observation(
            device(PRIMARY, rng, shapes={"rx-pps": collapse, "tx-pps": collapse, "sessions": collapse}),
            device(SHADOW, rng),
            health(web_latency=2000.0, web_ok=False, success=12, server_error=0),
            mirror(flows=395, resets=140),
            prediction(0.58),
        ),
    )
    return cases


def failover_input(drift, correlation, pred, state, now=NOW, explanation=None, signals=None):
    return {
        "failover": {
            "now_ms": now,
            "drift": {
                "score": drift,
                "rate_of_change": round(drift * 0.2, 3),
                "explanation": explanation
                or f"cpu drifts most, score {drift:.2f}: |z| growing +{drift * 0.2:.3f}/s",
            },
            "correlation": {
                "score": correlation,
                "signals": signals
                if signals is not None
                else (
                    [{"name": "co-rise:cpu+http-5xx-rate", "weight": correlation, "detail": ""}]
                    if correlation > 0
                    else []
                ),
            },
            **({"prediction": prediction(pred)} if pred is not None else {}),
            "state": state,
        }
    }


def state(consecutive=0, last=None, recent=()):
    s = {"consecutive_over": consecutive, "recent_go_ms": list(recent)}
    if last is not None:
        s["last_go_ms"] = last
    return s


def failover_cases():
    minute = 60_000
    return {
        "failover-first-over": (
            "Drift alone crosses its threshold for the first time: hysteresis holds (1 of the 240 drift alone needs).",
            {},
            failover_input(0.82, 0.2, 0.4, state()),
        ),
        "failover-hysteresis-reached": (
            "240th evaluation in a row with drift alone over threshold (two minutes at the 500 ms tick): go.",
            {},
            failover_input(0.84, 0.2, 0.45, state(consecutive=239)),
        ),
        "failover-corroborated": (
            "Drift over threshold, corroborated by correlation: 2 in a row suffice.",
            {},
            failover_input(0.75, 0.7, 0.5, state(consecutive=1)),
        ),
        "failover-predictor-only": (
            "Drift is low but the predictor is confident: the OR rule goes on the predictor alone.",
            {},
            failover_input(0.2, 0.1, 0.93, state(consecutive=2)),
        ),
        "failover-below-threshold-resets": (
            "Everything falls back below threshold: hold, and the count starts over.",
            {},
            failover_input(0.55, 0.3, 0.6, state(consecutive=2)),
        ),
        "failover-cooldown": (
            "Over threshold long enough, but the last failover was 2 minutes ago: cooling down.",
            {},
            failover_input(0.9, 0.6, 0.95, state(consecutive=4, last=NOW - 2 * minute, recent=[NOW - 2 * minute])),
        ),
        "failover-cap": (
            "Over threshold, cooldown over, but two failovers in the last hour already: capped.",
            {},
            failover_input(
                0.9,
                0.6,
                0.95,
                state(consecutive=3, last=NOW - 20 * minute, recent=[NOW - 75 * minute, NOW - 40 * minute, NOW - 20 * minute]),
            ),
        ),
        "failover-correlation-trigger": (
            "Correlation configured as a third trigger (correlation-threshold 0.8) and "
            "no hysteresis: it goes on correlation alone.",
            {"correlation-threshold": "0.8", "hysteresis": "1", "corroborated-hysteresis": "1"},
            failover_input(
                0.3,
                0.86,
                None,
                state(),
                signals=[
                    {"name": "health:postgres:db", "weight": 0.9, "detail": "database connection lost"},
                    {"name": "health:web:failing", "weight": 0.5, "detail": "the check failed"},
                ],
            ),
        ),
    }


def write(name, case):
    text = json.dumps(case, indent=1, ensure_ascii=False)
    # One sample list per line keeps the files readable and their diffs short.
    (HERE / f"{name}.json").write_text(compact_lists(text) + "\n")


def compact_lists(text):
    """Puts lists of numbers (samples, timestamps, indexes) on one line."""
    return re.sub(
        r"\[\s*([-0-9.eE+,\s]+?)\s*\]",
        lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",")) + "]",
        text,
    )


def main():
    for name, (description, obs) in observation_cases().items():
        write(name, {"description": description, "config": {}, "input": obs})
    for name, (description, config, inp) in failover_cases().items():
        write(name, {"description": description, "config": config, "input": inp})


if __name__ == "__main__":
    main()
