//! Faults drawn from the seed (`erlboot sim --chaos`): partitions, crashes and restarts,
//! datagram and segment loss, latency spikes, each healed a while later, all within the first
//! half-minute, so that the liveness bound applies.

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use crate::fault::Fault;
use crate::scenario::{Scenario, Timed};

/// The scenario with `count` more faults drawn from `seed`, each followed by its healing.
pub fn with_chaos(scenario: &Scenario, seed: u64, count: usize) -> Scenario {
    let mut rng = SmallRng::seed_from_u64(seed ^ 0x0043_4841_4f53);
    let mut chaotic = scenario.clone();
    let hosts: Vec<String> = scenario
        .clients
        .iter()
        .flat_map(|g| (1..=g.hosts).map(move |h| format!("{}-{h}", g.name)))
        .collect();
    let servers: Vec<String> = scenario.servers.iter().map(|s| s.name.clone()).collect();
    let pick =
        |rng: &mut SmallRng, names: &[String]| names[rng.random_range(0..names.len())].clone();
    for _ in 0..count {
        let at_s = (rng.random_range(0.0..30.0f64) * 10.0).round() / 10.0;
        let lasts = (rng.random_range(0.5..20.0f64) * 10.0).round() / 10.0;
        let (fault, heal) = match rng.random_range(0..5) {
            0 => {
                let (a, b) = (vec![pick(&mut rng, &hosts)], vec![pick(&mut rng, &servers)]);
                (
                    Fault::Partition {
                        a: a.clone(),
                        b: b.clone(),
                        oneway: false,
                    },
                    Fault::Repair {
                        a,
                        b,
                        oneway: false,
                    },
                )
            }
            1 => {
                let server = pick(&mut rng, &servers);
                (
                    Fault::Crash {
                        server: server.clone(),
                    },
                    Fault::Restart { server, port: None },
                )
            }
            2 => (
                Fault::UdpLoss {
                    rate: rng.random_range(0.05..0.5),
                },
                Fault::UdpLoss { rate: 0.0 },
            ),
            3 => (
                Fault::TcpLoss {
                    rate: rng.random_range(0.005..0.05),
                },
                Fault::TcpLoss { rate: 0.0 },
            ),
            _ => {
                let (a, b) = (vec![pick(&mut rng, &hosts)], vec![pick(&mut rng, &servers)]);
                let high = rng.random_range(10.0..200.0f64).round();
                (
                    Fault::Latency {
                        a: a.clone(),
                        b: b.clone(),
                        ms: [high / 2.0, high],
                    },
                    Fault::Latency {
                        a,
                        b,
                        ms: scenario.network.latency_ms,
                    },
                )
            }
        };
        chaotic.faults.push(Timed { at_s, fault });
        chaotic.faults.push(Timed {
            at_s: at_s + lasts,
            fault: heal,
        });
    }
    chaotic.name = format!("{} (chaos)", scenario.name);
    chaotic
}
