//! The indexed fields of one event line, read without building a JSON tree: simd-json
//! validates the whole line (structure, UTF-8, numbers) and lays it out as a tape, and
//! only the keys a [`Row`] needs are looked at. The `ingest` bench measures it beside
//! serde_json's borrowed-struct reader, which it replaced (~1.8 KB of OCSF per line made
//! that reader three quarters of decoding).
//!
//! It answers only for a line it can vouch for exactly as the general path (a
//! `serde_json::Value`) would read it: a JSON object naming the certificate's tenant, each
//! indexed key once and of its type. Anything else is `None`, and the general path reads,
//! rewrites or refuses the line with its reason.

use simd_json::prelude::*;
use simd_json::{Buffers, INPUT_PADDING, Tape};

use super::{MAX_UID, Row, Text};

/// simd-json's nesting limit for a line (see `FieldReader::default`).
const MAX_DEPTH: usize = 127;

/// Reusable buffers of the reader: one per [`super::Decoder`].
pub(super) struct FieldReader {
    /// The line copied and padded (simd-json unescapes strings in place and reads past
    /// the end in 64-byte blocks; the batch itself stays untouched).
    scratch: Vec<u8>,
    buffers: Buffers,
    /// The tape's allocation, kept between lines (`Tape::reset` frees it of the line).
    tape: Option<Tape<'static>>,
}

impl Default for FieldReader {
    fn default() -> Self {
        Self {
            scratch: Vec::with_capacity(4096),
            // As deep as serde_json reads (its limit of 128 open arrays and objects, which
            // `ChunkText` meets reading the line back), not simd-json's 1024: a line nested
            // deeper than that reader allows is stored only if a search can read it back.
            buffers: Buffers::with_max_depth(4096, MAX_DEPTH),
            tape: None,
        }
    }
}

impl FieldReader {
    /// The row of `line` if it names `tenant` and its indexed fields are as the general
    /// path would read them; `None` otherwise.
    pub(super) fn row(&mut self, line: &[u8], tenant: &str) -> Option<Row> {
        self.scratch.clear();
        self.scratch.extend_from_slice(line);
        self.scratch.resize(line.len() + INPUT_PADDING, 0);
        let mut tape = self.tape.take().unwrap_or_else(Tape::null).reset();
        let row = match simd_json::fill_tape_padded(
            &mut self.scratch,
            line.len(),
            &mut self.buffers,
            &mut tape,
        ) {
            Ok(()) => read(&tape, tenant),
            Err(_) => None,
        };
        self.tape = Some(tape.reset());
        row
    }
}

type V<'t, 'i> = simd_json::tape::Value<'t, 'i>;

/// Sets `slot` once: a second occurrence of a key makes the line the general path's
/// (serde's struct reader refused duplicates; a JSON tree keeps the last).
fn once<'t, 'i>(slot: &mut Option<V<'t, 'i>>, v: V<'t, 'i>) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// An optional string member: absent or null is `Some(None)`, a string `Some(Some(s))`,
/// anything else `None` (not vouched for).
fn opt_str<'i>(v: Option<V<'_, 'i>>) -> Option<Option<&'i str>> {
    match v {
        None => Some(None),
        Some(v) if v.is_null() => Some(None),
        Some(v) => v.into_string().map(Some),
    }
}

/// The members `keys` of an optional object member (absent or null: all `None`), each at
/// most once.
fn members<'t, 'i, const N: usize>(
    v: Option<V<'t, 'i>>,
    keys: [&str; N],
) -> Option<[Option<V<'t, 'i>>; N]> {
    let mut out = [None; N];
    let Some(v) = v else { return Some(out) };
    if v.is_null() {
        return Some(out);
    }
    for (k, m) in v.as_object()?.iter() {
        if let Some(i) = keys.iter().position(|&want| want == k) {
            once(&mut out[i], m)?;
        }
    }
    Some(out)
}

/// The string members `keys` of an optional object member.
fn strs<'i, const N: usize>(v: Option<V<'_, 'i>>, keys: [&str; N]) -> Option<[Option<&'i str>; N]> {
    let m = members(v, keys)?;
    let mut out = [None; N];
    for (o, v) in out.iter_mut().zip(m) {
        *o = opt_str(v)?;
    }
    Some(out)
}

fn read(tape: &Tape<'_>, tenant: &str) -> Option<Row> {
    const KEYS: [&str; 11] = [
        "metadata",
        "time",
        "class_uid",
        "type_uid",
        "severity_id",
        "device",
        "user",
        "actor",
        "src_endpoint",
        "dst_endpoint",
        "count",
    ];
    let [
        metadata,
        time,
        class_uid,
        type_uid,
        severity_id,
        device,
        user,
        actor,
        src,
        dst,
        count,
    ] = members(Some(tape.as_value()), KEYS)?;
    let [uid, tenant_uid] = members(metadata, ["uid", "tenant_uid"])?;
    let uid = uid?.into_string()?;
    if opt_str(tenant_uid)? != Some(tenant) || uid.is_empty() || uid.len() > MAX_UID {
        return None;
    }
    let [device, device_ip] = strs(device, ["hostname", "ip"])?;
    let [user] = strs(user, ["name"])?;
    let [actor_user] = members(actor, ["user"])?;
    let [actor_user] = strs(actor_user, ["name"])?;
    let [src_ip] = strs(src, ["ip"])?;
    let [dst_ip] = strs(dst, ["ip"])?;
    let count = match count {
        None => 1,
        Some(c) if c.is_null() => 1,
        Some(c) => c.as_u64()?,
    };
    let own = |s: Option<&str>| s.map(Text::from);
    Some(Row {
        uid: Text::from(uid),
        time_ms: time?.as_i64()?,
        class_uid: u32::try_from(class_uid?.as_i64()?).ok()?,
        type_uid: u32::try_from(type_uid?.as_i64()?).ok()?,
        severity_id: u8::try_from(severity_id?.as_i64()?).ok()?,
        device: own(device),
        device_ip: own(device_ip),
        user: own(user.or(actor_user)),
        src_ip: own(src_ip),
        dst_ip: own(dst_ip),
        count,
    })
}
