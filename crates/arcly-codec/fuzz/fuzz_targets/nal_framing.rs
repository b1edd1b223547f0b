#![no_main]
use arcly_codec::nal;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let b = bytes::Bytes::copy_from_slice(data);
    let nals: Vec<_> = nal::AnnexBNals::new(b.clone()).collect();
    let lp = nal::annexb_to_length_prefixed(&b).expect("small input converts");
    let back = nal::length_prefixed_to_annexb(&lp, 4).expect("own output parses");
    assert_eq!(nal::AnnexBNals::new(back).collect::<Vec<_>>(), nals);
    for size in 1..=4 {
        let _ = nal::LengthPrefixedNals::new(b.clone(), size).count();
        let _ = nal::relength(&b, size, 4);
    }
    let rbsp = nal::remove_emulation_prevention(data);
    assert_eq!(&*nal::remove_emulation_prevention(&nal::add_emulation_prevention(&rbsp)), &*rbsp);
    let _ = arcly_codec::h264::contains_keyframe_annexb(data);
});
