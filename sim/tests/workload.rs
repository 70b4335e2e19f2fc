//! The default workload: the recorded OTP 25 boot, served from the tree its capture carries,
//! so that the simulated server sends what OTP's server sent.

use std::path::Path;

use erlboot::client::Response;
use erlboot::proto::Request;
use erlboot_conformance::transcript::{Body, Transcript};
use erlboot_sim::Workload;

#[test]
fn the_simulated_server_answers_the_recorded_boot_with_the_recorded_bytes() {
    let workload = Workload::otp25();
    assert_eq!(workload.requests.len(), 386);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../captures/otp25-boot.pcap");
    let transcript = Transcript::read(&path, &Default::default()).expect("the capture reads");
    let recorded: Vec<&[u8]> = transcript.sessions[0]
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            Body::Reply { payload, .. } => Some(&payload[..]),
            _ => None,
        })
        .collect();
    assert_eq!(recorded.len(), 386);
    let differing: Vec<usize> = (0..386)
        .filter(|&i| workload.reply_frames[i][4..] != *recorded[i])
        .collect();
    assert_eq!(differing, Vec::<usize>::new(), "replies that differ");
    // The manifest's bytes_to_client: every frame with its length prefix.
    assert_eq!(workload.reply_bytes(), 4_050_659);
    // The recorded node's own work between requests is kept (about 0.2 s of its boot).
    let think = workload.think_time().as_secs_f64();
    assert!((0.1..1.0).contains(&think), "{think} s");
}

/// The server's tree holds each file's bytes once: those inside the expected reply, which
/// is what its nodes' replies are checked against.
#[test]
fn the_server_reads_the_bytes_the_replies_are_checked_against() {
    let workload = Workload::otp25();
    let mut shared = 0;
    for (index, request) in workload.requests.iter().enumerate() {
        let Request::Get(name) = request else {
            continue;
        };
        let Ok(contents) = workload.source.get(name) else {
            continue;
        };
        let frame = workload.reply_frames[index].as_ptr_range();
        assert!(
            frame.contains(&contents.as_ptr()),
            "request {index} ({name}): the tree holds a copy of its own"
        );
        shared += 1;
    }
    // Every file the boot reads (the rest of its `get`s are path tries, answered `enoent`).
    let files = workload
        .expected
        .iter()
        .filter(|reply| matches!(reply, Ok(Response::File(_))))
        .count();
    assert_eq!(shared, files);
    assert!(shared > 80, "{shared} files");
}

#[test]
fn the_boot_scripts_prim_loads_are_the_get_modules_calls() {
    let workload = erlboot_sim::Workload::otp25();
    // start.boot's one primLoad: error_handler ... supervisor, 29 modules with their path
    // tries, right after the boot script and the two ebin directories' infos.
    assert_eq!(
        workload.module_calls,
        vec![std::ops::Range { start: 3, end: 43 }]
    );
    let first = &workload.requests[3];
    let last = &workload.requests[42];
    assert_eq!(
        first.to_term().to_string(),
        r#"{get,"/usr/lib/erlang/lib/kernel-8.5.3/ebin/error_handler.beam"}"#
    );
    assert!(
        last.to_term().to_string().ends_with(r#"supervisor.beam"}"#),
        "{last:?}"
    );
}
