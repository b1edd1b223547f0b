#![no_main]
use arcly_codec::{is_keyframe, CodecInfo};
use arcly_core::CodecId;
use libfuzzer_sys::fuzz_target;

const CODECS: [CodecId; 7] =
    [CodecId::H264, CodecId::H265, CodecId::Av1, CodecId::Vp9, CodecId::Vvc, CodecId::Aac, CodecId::Opus];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else { return };
    let codec = CODECS[usize::from(sel) % CODECS.len()];
    if let Ok(info) = CodecInfo::from_config(codec, rest) {
        let _ = info.codec_string();
    }
    let _ = is_keyframe(codec, rest);
});
