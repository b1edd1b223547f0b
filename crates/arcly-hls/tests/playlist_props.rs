//! Properties: every playlist the renderer can produce from a model that
//! respects the target duration passes the checker, full and delta; the
//! checker never panics on arbitrary text.

use arcly_hls::checker;
use arcly_hls::playlist::{LowLatency, MediaPlaylist, PartEntry, SegmentEntry};
use proptest::prelude::*;

fn model() -> impl Strategy<Value = MediaPlaylist> {
    (
        1u32..6,
        0u64..1_000_000,
        proptest::collection::vec((0.5f64..1.0, any::<bool>(), 1usize..6), 0..20),
        any::<bool>(),
        0usize..5,
        any::<bool>(),
    )
        .prop_map(|(td, msn, segs, ll, pending, ended)| {
            let mut p = MediaPlaylist::new(td);
            p.media_sequence = msn;
            let pt = 0.2;
            if ll {
                p.low_latency = Some(LowLatency {
                    part_target: pt,
                    part_hold_back: 3.0 * pt,
                    can_block_reload: true,
                    can_skip_until: Some(6.0 * f64::from(td)),
                });
                p.map_uri = Some("init.mp4".into());
            }
            for (i, (frac, disc, nparts)) in segs.into_iter().enumerate() {
                let msn = msn + i as u64;
                let mut e = SegmentEntry::new(format!("s{msn}.m4s"), 0.0);
                e.discontinuity = disc && i > 0;
                if ll {
                    // Parts of exactly the part target, the last one shorter.
                    let mut total = 0.0;
                    for k in 0..nparts {
                        let d = if k + 1 == nparts { pt * frac } else { pt };
                        total += (d * 1000.0f64).round() / 1000.0;
                        e.parts.push(PartEntry {
                            uri: format!("p{msn}.{k}.m4s"),
                            duration: (d * 1000.0f64).round() / 1000.0,
                            independent: k == 0,
                        });
                    }
                    e.duration = total;
                } else {
                    e.duration = f64::from(td) * frac + 0.4;
                }
                p.segments.push(e);
            }
            if ll && !ended {
                p.pending_parts = (0..pending)
                    .map(|k| PartEntry {
                        uri: format!("pp.{k}.m4s"),
                        duration: pt,
                        independent: k == 0,
                    })
                    .collect();
                p.preload_hint = Some(format!("pp.{pending}.m4s"));
            }
            p.ended = ended;
            p
        })
}

proptest! {
    #[test]
    fn rendered_playlists_pass_the_checker(p in model()) {
        let full = p.render(false);
        let s = checker::check(&full).map_err(|e| TestCaseError::fail(format!("{e:#?}\n{full}")))?;
        prop_assert_eq!(s.segments.len(), p.segments.len());
        prop_assert_eq!(s.media_sequence, p.media_sequence);
        let delta = p.render(true);
        let d = checker::check(&delta).map_err(|e| TestCaseError::fail(format!("{e:#?}\n{delta}")))?;
        prop_assert_eq!(d.skipped as usize + d.segments.len(), p.segments.len());
        // The delta's segments are the tail of the full playlist.
        prop_assert_eq!(&s.segments[s.segments.len() - d.segments.len()..], &d.segments[..]);
    }

    #[test]
    fn checker_never_panics(text in "(#EXT[-A-Z]{0,20}(:[-A-Z=0-9.,\"]{0,30})?\n|[a-z0-9.]{1,8}\n){0,30}") {
        let _ = checker::check(&format!("#EXTM3U\n{text}"));
    }
}
