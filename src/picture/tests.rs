use super::annexb::{append_frame, parameter_sets, AnnexBError};
use crate::media::avc::AvcConfig;

fn config() -> AvcConfig {
    AvcConfig {
        profile_idc: 100,
        profile_compatibility: 0,
        level_idc: 30,
        nal_length_size: 4,
        sps: vec![vec![0x67, 1, 2]],
        pps: vec![vec![0x68, 3]],
        width: 16,
        height: 16,
        color: Default::default(),
    }
}

#[test]
fn avcc_becomes_annex_b_after_the_parameter_sets() {
    let mut out = parameter_sets(&config());
    append_frame(
        &config(),
        &[0, 0, 0, 2, 0x65, 9, 0, 0, 0, 1, 0x06],
        &mut out,
    )
    .unwrap();
    assert_eq!(
        out,
        [0, 0, 0, 1, 0x67, 1, 2, 0, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 9, 0, 0, 0, 1, 0x06]
    );
}

#[test]
fn lengths_past_the_end_and_empty_frames_are_errors() {
    let mut out = Vec::new();
    assert_eq!(
        append_frame(&config(), &[0, 0, 0, 9, 0x65], &mut out),
        Err(AnnexBError::Truncated(0))
    );
    assert_eq!(
        append_frame(&config(), &[0, 0, 0, 1, 0x65, 0, 0], &mut out),
        Err(AnnexBError::Truncated(5))
    );
    assert_eq!(
        append_frame(&config(), &[], &mut out),
        Err(AnnexBError::Empty)
    );
    assert_eq!(
        append_frame(&config(), &[0, 0, 0, 0], &mut out),
        Err(AnnexBError::Empty)
    );
    let mut huge = config();
    huge.nal_length_size = 4;
    assert!(append_frame(&huge, &[0xff, 0xff, 0xff, 0xff, 1], &mut out).is_err());
}

#[test]
fn reference_frames_are_told_from_disposable_ones() {
    use super::annexb::is_reference;
    // SEI then a non-reference B slice (nal_ref_idc 0, type 1).
    assert!(!is_reference(
        &config(),
        &[0, 0, 0, 1, 0x06, 0, 0, 0, 2, 0x01, 9]
    ));
    // A reference P slice (0x41) and an IDR (0x65).
    assert!(is_reference(&config(), &[0, 0, 0, 2, 0x41, 9]));
    assert!(is_reference(&config(), &[0, 0, 0, 2, 0x65, 9]));
    // Garbage is treated as a reference (never skipped).
    assert!(is_reference(&config(), &[0, 0, 0, 9]));
    assert!(is_reference(&config(), &[]));
}
