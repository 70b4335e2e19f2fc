//! A tiny zip writer for odd and hostile archives that no zip tool would make.
#![allow(dead_code)]

/// One entry as it goes into the archive: the payload is written exactly as given.
#[derive(Clone, Debug)]
pub struct Entry {
    pub name: Vec<u8>,
    pub payload: Vec<u8>,
    pub method: u16,
    pub flags: u16,
    pub uncompressed: u32,
    pub time: u16,
    pub date: u16,
}

/// 2024-03-05 10:20:32 in DOS form.
pub const TIME: u16 = (10 << 11) | (20 << 5) | 16;
pub const DATE: u16 = ((2024 - 1980) << 9) | (3 << 5) | 5;

pub fn stored(name: &[u8], data: &[u8]) -> Entry {
    Entry {
        name: name.to_vec(),
        payload: data.to_vec(),
        method: 0,
        flags: 0,
        uncompressed: data.len() as u32,
        time: TIME,
        date: DATE,
    }
}

pub fn deflated(name: &[u8], data: &[u8]) -> Entry {
    Entry {
        payload: miniz_oxide::deflate::compress_to_vec(data, 6),
        method: 8,
        ..stored(name, data)
    }
}

/// The local headers and payloads, then the central directory in `order` (indices into
/// `entries`), then the end record with `comment`.
pub fn build_ordered(entries: &[Entry], order: &[usize], comment: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut offsets = Vec::new();
    for e in entries {
        offsets.push(out.len() as u32);
        out.extend_from_slice(&[0x50, 0x4b, 0x03, 0x04, 20, 0]);
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&e.time.to_le_bytes());
        out.extend_from_slice(&e.date.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.uncompressed.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(&e.name);
        out.extend_from_slice(&e.payload);
    }
    let cd_start = out.len() as u32;
    for &i in order {
        let e = &entries[i];
        out.extend_from_slice(&[0x50, 0x4b, 0x01, 0x02, 20, 3, 20, 0]);
        out.extend_from_slice(&e.flags.to_le_bytes());
        out.extend_from_slice(&e.method.to_le_bytes());
        out.extend_from_slice(&e.time.to_le_bytes());
        out.extend_from_slice(&e.date.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&(e.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&e.uncompressed.to_le_bytes());
        out.extend_from_slice(&(e.name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0; 12]);
        out.extend_from_slice(&offsets[i].to_le_bytes());
        out.extend_from_slice(&e.name);
    }
    let cd_size = out.len() as u32 - cd_start;
    out.extend_from_slice(&[0x50, 0x4b, 0x05, 0x06, 0, 0, 0, 0]);
    out.extend_from_slice(&(order.len() as u16).to_le_bytes());
    out.extend_from_slice(&(order.len() as u16).to_le_bytes());
    out.extend_from_slice(&cd_size.to_le_bytes());
    out.extend_from_slice(&cd_start.to_le_bytes());
    out.extend_from_slice(&(comment.len() as u16).to_le_bytes());
    out.extend_from_slice(comment);
    out
}

pub fn build(entries: &[Entry]) -> Vec<u8> {
    let order: Vec<usize> = (0..entries.len()).collect();
    build_ordered(entries, &order, b"")
}

/// Where the end record starts in an archive built with an empty comment.
pub fn end_record(zip: &[u8]) -> usize {
    zip.len() - 22
}
