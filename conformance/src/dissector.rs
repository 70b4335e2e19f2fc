//! A Wireshark/tshark dissector for the boot protocol, as Lua source.
//!
//! It decodes EBOOTQ/EBOOTR on UDP 4368 (which Wireshark otherwise names only `wxbrief`) and
//! the `{packet,4}` requests and replies on each TCP port an EBOOTR announces, reassembled
//! across segments, showing each message's kind and its term as Erlang text. Its fields
//! (`eboot.kind`, `eboot.command`, `eboot.file`, `eboot.result`, `eboot.term`, ...) are listed
//! at the top of the script.

/// The dissector's Lua source (for `tshark -X lua_script:FILE` or a Wireshark plugin folder).
pub const LUA: &str = include_str!("eboot.lua");

/// The file name Wireshark's plugin folders expect it under.
pub const FILE_NAME: &str = "eboot.lua";
