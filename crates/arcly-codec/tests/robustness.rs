//! Untrusted input: every parser returns an error instead of panicking, and
//! whatever parses rebuilds to an equal value. Inputs are random bytes and
//! real records with random bytes overwritten (the same properties the
//! `fuzz/` targets check, run here at proptest scale).

use arcly_codec::aac::{AdtsFrames, AudioSpecificConfig};
use arcly_codec::h264::{self, AvcDecoderConfigurationRecord};
use arcly_codec::{is_keyframe, CodecInfo};
use arcly_core::CodecId;
use bytes::Bytes;
use proptest::prelude::*;

// x264 High 640x360 record (fixtures/media/h264-aac.flv)
const AVCC: &[u8] = &[
    0x01, 0x64, 0x00, 0x1e, 0xff, 0xe1, 0x00, 0x1a, 0x67, 0x64, 0x00, 0x1e, 0xac, 0xd9, 0x40, 0xa0,
    0x2f, 0xf9, 0x70, 0x11, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00, 0x00, 0x03, 0x00, 0x32, 0x0f, 0x16,
    0x2d, 0x96, 0x01, 0x00, 0x04, 0x68, 0xef, 0xbc, 0xb0, 0xfd, 0xf8, 0xf8, 0x00,
];

fn mutated(base: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec((0..base.len(), any::<u8>()), 1..4),
        0..=base.len(),
    )
        .prop_map(move |(edits, cut)| {
            let mut v = base.to_vec();
            for (i, b) in edits {
                v[i] = b;
            }
            v.truncate(cut.max(1));
            v
        })
}

const CODECS: [CodecId; 7] = [
    CodecId::H264,
    CodecId::H265,
    CodecId::Av1,
    CodecId::Vp9,
    CodecId::Vvc,
    CodecId::Aac,
    CodecId::Opus,
];

#[test]
fn the_sample_record_is_valid() {
    let rec = AvcDecoderConfigurationRecord::parse(&Bytes::from_static(AVCC)).unwrap();
    assert_eq!(rec.to_bytes().unwrap(), AVCC);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn avcc_mutations(data in mutated(AVCC)) {
        let b = Bytes::from(data);
        if let Ok(rec) = AvcDecoderConfigurationRecord::parse(&b) {
            let out = rec.to_bytes().unwrap();
            prop_assert_eq!(AvcDecoderConfigurationRecord::parse(&out).unwrap(), rec.clone());
            let _ = rec.parse_sps();
        }
        let _ = CodecInfo::from_config_bytes(CodecId::H264, &b);
        for sps in h264::AnnexBNals::new(b.clone()) {
            let _ = h264::Sps::parse(&sps);
            let _ = h264::Pps::parse(&sps);
        }
    }

    #[test]
    fn asc_random(data in proptest::collection::vec(any::<u8>(), 0..12)) {
        if let Ok(asc) = AudioSpecificConfig::parse(&data) {
            if let Ok(b) = asc.to_bytes() {
                prop_assert_eq!(AudioSpecificConfig::parse(&b).unwrap(), asc);
            }
        }
        let _ = AdtsFrames::new(Bytes::from(data)).count();
    }

    #[test]
    fn every_codec_refuses_garbage_cleanly(sel in 0usize..7, data in proptest::collection::vec(any::<u8>(), 0..256)) {
        let codec = CODECS[sel];
        if let Ok(info) = CodecInfo::from_config(codec, &data) {
            let _ = info.codec_string();
        }
        let _ = is_keyframe(codec, &data);
    }
}

#[cfg(all(feature = "h265", feature = "vvc", feature = "av1", feature = "vp9"))]
mod optional {
    use super::*;
    use arcly_codec::{av1, h265, vp9, vvc};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn records_round_trip_or_refuse(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            let b = Bytes::from(data.clone());
            if let Ok(r) = h265::HevcDecoderConfigurationRecord::parse(&b) {
                prop_assert_eq!(h265::HevcDecoderConfigurationRecord::parse(&r.to_bytes().unwrap()).unwrap(), r);
            }
            if let Ok(r) = vvc::VvcDecoderConfigurationRecord::parse(&b) {
                if let Ok(out) = r.to_bytes() {
                    prop_assert_eq!(vvc::VvcDecoderConfigurationRecord::parse(&out).unwrap(), r);
                }
            }
            if let Ok(c) = av1::to_canonical(&b) {
                prop_assert!(av1::Obus::new(c).all(|o| o.is_ok_and(|o| o.has_size_field)));
            }
            let _ = av1::SequenceHeader::parse(&data);
            let _ = vp9::superframe_frames(&b);
            let _ = vp9::VpCodecConfigurationRecord::from_keyframe(&data, None);
            let _ = h265::Sps::parse(&data);
            let _ = vvc::Sps::parse(&data);
        }
    }
}
