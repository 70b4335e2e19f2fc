//! The boot profile `erlboot boot` replays by default (captures/otp25-boot.requests) is the
//! request sequence of the real boot in captures/otp25-boot.pcap, split into its phases.

use erlboot_support::capture;

use std::path::Path;

use erlboot::client::{BootProfile, Phase};
use erlboot::etf::{Decoder, Limits};
use erlboot::proto::Request;

/// The profile text the capture gives.
fn profile_from_capture() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let boot = capture::read(&root.join("captures/otp25-boot.pcap"));
    let decoder = Decoder::new(Limits::request());
    let mut profile = BootProfile::default();
    for frame in &boot.streams[0].to_server_frames {
        let request = Request::decode(&frame.payload, &decoder).unwrap();
        let phase = profile.phases.last().map_or("", |p| p.name.as_str());
        // The phases of PROTOCOL.md §6.1: the boot script, the modules the boot script loads,
        // the code server's scan of the library, then modules loaded on demand.
        let next = match (&request, phase) {
            (_, "") => "boot script",
            (Request::Get(name), "boot script") if name.ends_with(".beam") => "boot script modules",
            (Request::ListDir(_), "boot script modules") => "code path scan",
            (Request::Get(name), "code path scan") if name.ends_with(".beam") => {
                "modules on demand"
            }
            _ => phase,
        };
        if next != phase {
            profile.phases.push(Phase {
                name: next.to_owned(),
                requests: Vec::new(),
            });
        }
        profile.phases.last_mut().unwrap().requests.push(request);
    }
    profile
        .to_text(&[
            "The requests of a real OTP 25 boot (captures/otp25-boot.pcap), one per line:",
            "COMMAND [NAME]. Lines starting with \"# phase\" start a phase.",
        ])
        .unwrap()
}

#[test]
fn the_default_profile_is_the_captured_boot() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let committed = std::fs::read_to_string(root.join("captures/otp25-boot.requests")).unwrap();
    assert!(
        committed == profile_from_capture(),
        "captures/otp25-boot.requests differs from the capture; rewrite it with \
         `cargo test --test boot_profile -- --ignored write_profile`"
    );
}

#[test]
#[ignore = "rewrites captures/otp25-boot.requests"]
fn write_profile() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    std::fs::write(
        root.join("captures/otp25-boot.requests"),
        profile_from_capture(),
    )
    .unwrap();
}
