//! Junk from the network: a deterministic mutation fuzz of the RTP parser and the relay.

mod common;

use common::{Rng, bridge};
use switchboard_media::{Leg, Relay, RtpExtension, RtpPacket, SequenceUnwrapper, classify};

/// Well-formed packets of every shape to mutate from.
fn seeds() -> Vec<Vec<u8>> {
    let ext = [0xAB; 8];
    let mut full = RtpPacket::new(0, 65535, 123, 456, &[0xFF; 160]);
    full.csrcs = vec![1, 2];
    full.extension = Some(RtpExtension {
        profile: 0xBEDE,
        data: &ext,
    });
    full.padding = 4;
    vec![
        RtpPacket::new(0, 1, 160, 7, &[0xFF; 160])
            .to_bytes()
            .unwrap(),
        RtpPacket::new(101, 2, 320, 7, &[1, 0x8A, 0, 160])
            .to_bytes()
            .unwrap(),
        full.to_bytes().unwrap(),
        vec![0x81, 200, 0, 6, 0, 0, 0, 7],
    ]
}

#[test]
fn twenty_thousand_mutations_never_panic_and_valid_parses_round_trip() {
    let mut rng = Rng::new(0x5EED_F00D);
    let seeds = seeds();
    let mut relay = Relay::new(bridge()).unwrap();
    let mut parsed = 0;
    for round in 0..20_000u64 {
        let mut datagram = seeds[rng.below(seeds.len())].clone();
        for _ in 0..1 + rng.below(4) {
            match rng.below(5) {
                0 if !datagram.is_empty() => {
                    let i = rng.below(datagram.len());
                    datagram[i] ^= 1 << rng.below(8);
                }
                1 if !datagram.is_empty() => {
                    let i = rng.below(datagram.len());
                    datagram[i] = rng.byte();
                }
                2 => datagram.truncate(rng.below(datagram.len() + 1)),
                3 => datagram.extend((0..rng.below(8)).map(|_| rng.byte())),
                // The first byte holds every length-bearing flag; hit it often.
                _ if !datagram.is_empty() => datagram[0] = rng.byte(),
                _ => {}
            }
        }

        let _ = classify(&datagram);
        if let Ok(packet) = RtpPacket::parse(&datagram) {
            parsed += 1;
            assert_eq!(packet.len(), datagram.len(), "round {round}");
            let bytes = packet.to_bytes().unwrap();
            assert_eq!(RtpPacket::parse(&bytes).unwrap(), packet, "round {round}");
        }
        let leg = if round % 2 == 0 { Leg::A } else { Leg::B };
        let _ = relay.handle_packet(round * 20, leg, &datagram);
    }
    assert!(
        parsed > 1000,
        "the mutations still reach the success path ({parsed})"
    );
    let stats = relay.stats(Leg::A);
    assert_eq!(stats.packets_in, 10_000);
}

#[test]
fn the_unwrapper_survives_any_sequence() {
    let mut rng = Rng::new(99);
    let mut unwrapper = SequenceUnwrapper::new();
    for _ in 0..20_000 {
        let extended = unwrapper.unwrap(rng.next_u64() as u16);
        assert!(extended <= unwrapper.highest().unwrap() + 65536);
    }
}
