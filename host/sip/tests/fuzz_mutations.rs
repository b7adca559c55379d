//! The cargo-fuzz property, on stable: 20,000 deterministic mutations of the fixtures.
//! `SIP_MUTATION_SEED` and `SIP_MUTATIONS` override the seed and count for longer runs.

mod common;

/// xorshift64*: deterministic, so a failure reproduces with its iteration number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

const TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b":",
    b";",
    b",",
    b"\"",
    b"<",
    b">",
    b"@",
    b"\0",
    b" ",
    b"\t",
    b"\r\n ",
    b"Content-Length: 99999\r\n",
    b"l: 0\r\n",
    b"v: SIP/2.0/UDP x\r\n",
    b"SIP/2.0",
    b"sips:",
    b"tel:+1",
    b"[::1]",
    b";branch=z9hG4bK",
    b"CSeq: -1 ACK\r\n",
    b"\xff\xfe",
];

fn mutate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(7) {
            0 if !data.is_empty() => {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
            1 => data.insert(at, rng.next() as u8),
            2 => {
                let end = (at + rng.below(40)).min(data.len());
                data.drain(at..end);
            }
            3 => {
                let end = (at + rng.below(60)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            4 => data.truncate(at),
            5 => {
                let token = TOKENS[rng.below(TOKENS.len())];
                data.splice(at..at, token.iter().copied());
            }
            _ => {
                let other = &seeds[rng.below(seeds.len())];
                let from = rng.below(other.len());
                let end = (from + rng.below(80)).min(other.len());
                data.splice(at..at, other[from..end].iter().copied());
            }
        }
    }
    data
}

#[test]
fn twenty_thousand_mutated_fixtures_keep_the_parser_properties() {
    let seeds: Vec<Vec<u8>> = common::fixtures().into_iter().map(|(_, b)| b).collect();
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let mut rng = Rng(env("SIP_MUTATION_SEED", 0x5EED_5EED_5EED_5EED) | 1);
    let count = env("SIP_MUTATIONS", 20_000);
    let (mut parsed, mut answered) = (0u64, 0u64);
    for i in 0..count {
        let data = mutate(&mut rng, &seeds);
        let result = std::panic::catch_unwind(|| switchboard_sip::fuzzing::check(&data));
        if result.is_err() {
            panic!(
                "iteration {i} broke a property on {:?}",
                String::from_utf8_lossy(&data)
            );
        }
        match switchboard_sip::message::Message::parse(&data) {
            Ok(_) => parsed += 1,
            Err(e) if e.can_answer().is_some() => answered += 1,
            Err(_) => {}
        }
    }
    // The mutations must exercise both paths, not only produce garbage.
    assert!(parsed > 2_000, "only {parsed} mutations parsed");
    assert!(
        answered > 1_000,
        "only {answered} mutations were answerable"
    );
}
