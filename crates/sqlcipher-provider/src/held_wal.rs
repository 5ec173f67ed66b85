//! A file layer (SQLite VFS) that holds a commit's WAL frames and writes them together, so that the
//! signatures of the pages in them can be made on the second core after SQLCipher has handed them on.
//!
//! SQLCipher encrypts and signs each page as SQLite writes it into the write-ahead log, one page after
//! the other on the writing thread, and SQLite writes the page the moment the codec returns it. On a
//! machine whose SHA-512 is slower than its AES, the signature then stays on the commit's path even with
//! its hash started alongside the encryption ([`crate::signing_alongside`]). Through this layer a page
//! of the log is signed later: the provider's signing call leaves the signature's place unfilled and
//! notes the page ([`Unsigned`]); this layer copies the page when SQLite writes it, queues the signature
//! for the helper thread, and holds the frame. At the commit's last frame (or before anything reads,
//! syncs, sizes or truncates the log, or after [`MOST_HELD`] frames) it puts each signature in its page,
//! signing any the helper has not finished itself, recomputes SQLite's chained frame checksums over the
//! finished pages and writes the frames in one write.
//!
//! The bytes in the file are those SQLite and SQLCipher would have written: the same pages, signatures
//! and checksums, so the file stays standard SQLCipher 4 and a stock SQLCipher reads it, recovering the
//! log after a crash included. Nothing held is visible to another connection: SQLite publishes frames in
//! its shared index only after writing them, and the commit's last write is where this layer writes.
//!
//! A signature is left unfilled only for a page encrypted into an output buffer this layer has seen a
//! log frame come from (a SQLCipher codec's buffer, registered while that log file is open), so every
//! page left unsigned is written by a connection whose files all go through this layer: a page written
//! anywhere else than a log frame (the database file, a rollback or statement journal, a frame rewritten
//! in place) is signed on the spot, on the writing thread, before it is written. Every other file call
//! goes straight to the default VFS.

use std::cell::RefCell;
use std::ffi::{CStr, c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use libsqlite3_sys as ffi;

use crate::signing_alongside::{self, QueuedSignature, Second};
use crate::{HmacSha512, SHA512_LEN};

/// The name connections open files with to go through this layer.
pub const VFS_NAME: &str = "stormops-held-wal";
const VFS_NAME_C: &CStr = c"stormops-held-wal";
/// A log frame's header: page number, commit size, two salts, two checksum words.
const FRAME_HEADER: usize = 24;
/// The log file's header: magic, version, page size, checkpoint sequence, salts, checksum.
const WAL_HEADER: usize = 32;
/// Frames held at most before they are written without waiting for a commit (a long transaction's
/// spilled pages): 2 MiB of 4 KiB pages.
const MOST_HELD: usize = 512;

/// The most bytes given to the default VFS in one write: its unix write masks lengths to 17 bits.
const WRITE_AT_MOST: usize = 96 * 1024;

/// Why [`register_vfs`] could not add this layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VfsError(pub c_int);

impl std::fmt::Display for VfsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SQLite could not register the held-WAL VFS (code {})",
            self.0
        )
    }
}

impl std::error::Error for VfsError {}

/// The default VFS this layer forwards to.
struct Below(*mut ffi::sqlite3_vfs);
// SAFETY: SQLite's VFS objects are registered once and never freed; their methods are thread-safe.
unsafe impl Send for Below {}
// SAFETY: as above.
unsafe impl Sync for Below {}

static BELOW: OnceLock<Below> = OnceLock::new();
static REGISTERED: OnceLock<Result<(), VfsError>> = OnceLock::new();

/// Registers this layer (not as the default VFS) and returns its name; calling it again is a no-op.
pub fn register_vfs() -> Result<&'static str, VfsError> {
    let registered = REGISTERED.get_or_init(|| {
        // SAFETY: sqlite3_vfs_find initialises SQLite and returns the default VFS, which lives for the
        // process; the copy made of it is leaked, as SQLite keeps a registered VFS until unregistered.
        unsafe {
            let below = ffi::sqlite3_vfs_find(ptr::null());
            if below.is_null() {
                return Err(VfsError(ffi::SQLITE_ERROR));
            }
            let _ = BELOW.set(Below(below));
            let mut vfs: ffi::sqlite3_vfs = ptr::read(below);
            let size =
                std::mem::size_of::<HeldFile>() + usize::try_from((*below).szOsFile).unwrap_or(0);
            vfs.szOsFile = c_int::try_from(size).map_err(|_| VfsError(ffi::SQLITE_ERROR))?;
            vfs.zName = VFS_NAME_C.as_ptr();
            vfs.pNext = ptr::null_mut();
            vfs.xOpen = Some(open);
            match ffi::sqlite3_vfs_register(Box::leak(Box::new(vfs)), 0) {
                ffi::SQLITE_OK => Ok(()),
                code => Err(VfsError(code)),
            }
        }
    });
    registered.map(|()| VFS_NAME)
}

/// A signature the provider left unfilled: the page it belongs to is about to be written.
pub(crate) struct Unsigned {
    /// Where the signature goes (SQLCipher's output buffer).
    out: usize,
    /// The signed bytes before the page number: where they start and how many.
    signed: usize,
    signed_len: usize,
    /// The rest of the message (the page number).
    second: Second,
    signer: Arc<HmacSha512>,
}

thread_local! {
    /// The signature this thread's provider left unfilled for the page SQLite writes next.
    static UNSIGNED: RefCell<Option<Unsigned>> = const { RefCell::new(None) };
}

/// Output buffers log frames have come from, with the log file (its address) that saw each.
static FRAME_SOURCES: Mutex<Vec<(usize, usize, usize)>> = Mutex::new(Vec::new());

/// Counts forgotten frame sources, so a thread's remembered answer is checked again after one.
static SOURCES_FORGOTTEN: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The frame source this thread last found an output in, and `SOURCES_FORGOTTEN` then: a
    /// connection encrypts page after page into the same buffer.
    static LAST_SOURCE: std::cell::Cell<(u64, usize, usize)> =
        const { std::cell::Cell::new((u64::MAX, 0, 0)) };
}

thread_local! {
    /// Where this thread's provider last encrypted a page to be written.
    static ENCRYPTED_INTO: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Notes that a page to be written was just encrypted to `output` on this thread.
pub(crate) fn encrypted_into(output: usize) {
    ENCRYPTED_INTO.with(|last| last.set(output));
}

/// Whether a page encrypted to `output` may be signed after it is handed on (see the module doc).
pub(crate) fn may_sign_later(output: usize) -> bool {
    if !signing_alongside::signs_behind() {
        return false;
    }
    let forgotten = SOURCES_FORGOTTEN.load(Ordering::Acquire);
    let (seen, start, len) = LAST_SOURCE.with(std::cell::Cell::get);
    if seen == forgotten && output >= start && output < start + len {
        return true;
    }
    let found = FRAME_SOURCES.lock().ok().and_then(|sources| {
        sources
            .iter()
            .find(|&&(start, len, _)| output >= start && output < start + len)
            .copied()
    });
    match found {
        Some((start, len, _)) => {
            LAST_SOURCE.with(|last| last.set((forgotten, start, len)));
            true
        }
        None => false,
    }
}

/// Notes a signature left unfilled; the next write of its page fills or queues it. False (the caller
/// signs in place) if the message's tail is longer than a page number.
pub(crate) fn leave_unsigned(
    out: *mut u8,
    signed: &[u8],
    second: &[u8],
    signer: Arc<HmacSha512>,
) -> bool {
    let Some(second) = Second::new(second) else {
        return false;
    };
    let unsigned = Unsigned {
        out: out as usize,
        signed: signed.as_ptr() as usize,
        signed_len: signed.len(),
        second,
        signer,
    };
    UNSIGNED.with(|slot| {
        if slot.borrow_mut().replace(unsigned).is_some() {
            UNCLAIMED.fetch_add(1, Ordering::Relaxed);
        }
    });
    true
}

/// Signatures left unfilled that no write through this layer took (none in a correct run; tests check).
static UNCLAIMED: AtomicU64 = AtomicU64::new(0);

/// Pages written through this layer whose signature was made after SQLCipher handed them on.
static SIGNED_AFTER_HANDING_ON: AtomicU64 = AtomicU64::new(0);

/// How many log pages were written with their signature made after SQLCipher handed them on (by the
/// helper, or by the frames' flush when the helper had not taken them).
pub fn pages_signed_after_handing_on() -> u64 {
    SIGNED_AFTER_HANDING_ON.load(Ordering::Relaxed)
}

/// How many signatures were left unfilled and then not written through this layer.
pub fn signatures_unclaimed() -> u64 {
    UNCLAIMED.load(Ordering::Relaxed)
}

/// The unfilled signature of the page in `[start, start + len)`, taken from this thread's slot.
fn unsigned_within(start: usize, len: usize) -> Option<(Unsigned, usize, usize)> {
    UNSIGNED.with(|slot| {
        let mut slot = slot.borrow_mut();
        let within = |at: usize, n: usize| {
            at >= start && at.checked_add(n).is_some_and(|end| end <= start + len)
        };
        let found = slot
            .as_ref()
            .is_some_and(|u| within(u.out, SHA512_LEN) && within(u.signed, u.signed_len));
        if !found {
            return None;
        }
        let unsigned = slot.take()?;
        let (out, signed) = (unsigned.out - start, unsigned.signed - start);
        Some((unsigned, out, signed))
    })
}

/// This layer's file: the default VFS's file follows it in the same allocation.
#[repr(C)]
struct HeldFile {
    base: ffi::sqlite3_file,
    /// The log's held frames; null for every other file.
    frames: *mut HeldFrames,
}

/// The default VFS's file inside ours.
///
/// # Safety
/// `file` is a [`HeldFile`] SQLite allocated with this VFS's `szOsFile`.
unsafe fn below(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: the allocation holds a HeldFile and then the default VFS's file (see `register_vfs`).
    unsafe {
        file.cast::<u8>()
            .add(std::mem::size_of::<HeldFile>())
            .cast()
    }
}

/// The default VFS's methods for its file inside ours.
///
/// # Safety
/// As [`below`], for a file whose open succeeded.
unsafe fn below_methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: a successful open set the inner file's methods to the default VFS's static table.
    unsafe { &*(*below(file)).pMethods }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const std::ffi::c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let Some(Below(below_vfs)) = BELOW.get() else {
        return ffi::SQLITE_ERROR;
    };
    let held = file.cast::<HeldFile>();
    // SAFETY: SQLite passes szOsFile writable bytes for the file; the default VFS opens its own file in
    // the part after ours and sets its methods only on success.
    unsafe {
        (*held).base.pMethods = ptr::null();
        (*held).frames = ptr::null_mut();
        let Some(open_below) = (**below_vfs).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let code = open_below(*below_vfs, name, below(file), flags, out_flags);
        if code != ffi::SQLITE_OK || (*below(file)).pMethods.is_null() {
            return code;
        }
        // A log is held only where SQLite writes each frame whole: without power-safe overwrite it
        // pads a syncing commit to the sector and may split a page's write around a sync.
        let whole_frames =
            below_methods(file)
                .xDeviceCharacteristics
                .is_some_and(|characteristics| {
                    characteristics(below(file)) & ffi::SQLITE_IOCAP_POWERSAFE_OVERWRITE != 0
                });
        if flags & ffi::SQLITE_OPEN_WAL != 0 && whole_frames {
            (*held).frames = Box::into_raw(Box::default());
        }
        (*held).base.pMethods = &METHODS;
    }
    ffi::SQLITE_OK
}

static METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

/// The log's held frames, if `file` is a log.
///
/// # Safety
/// `file` is an open [`HeldFile`]; SQLite makes one call on a file at a time.
unsafe fn frames<'a>(file: *mut ffi::sqlite3_file) -> Option<&'a mut HeldFrames> {
    // SAFETY: `frames` is null or the Box this file owns, used by one call at a time.
    unsafe { (*file.cast::<HeldFile>()).frames.as_mut() }
}

/// Writes the held frames before a call that could see the file's bytes or size.
///
/// # Safety
/// As [`frames`].
unsafe fn write_held(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the caller's file.
    match unsafe { frames(file) } {
        // SAFETY: the file's own inner file.
        Some(frames) => frames.write_out(unsafe { below(file) }),
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite closes an open file once; the held frames go out first and the Box is freed here.
    unsafe {
        let written = write_held(file);
        let held = file.cast::<HeldFile>();
        if !(*held).frames.is_null() {
            drop(Box::from_raw((*held).frames));
            (*held).frames = ptr::null_mut();
            forget_sources(file as usize);
        }
        let closed = match below_methods(file).xClose {
            Some(close) => close(below(file)),
            None => ffi::SQLITE_OK,
        };
        if written != ffi::SQLITE_OK {
            written
        } else {
            closed
        }
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: ffi::sqlite3_int64,
) -> c_int {
    let Ok(len) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite passes `amount` readable bytes at `buf`; the file is open.
    unsafe {
        let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), len);
        match frames(file) {
            Some(frames) => frames.write(file as usize, below(file), bytes, offset),
            None => write_signed(below(file), bytes, offset),
        }
    }
}

/// Forwards a call that neither reads nor writes the file's bytes.
macro_rules! forward {
    ($name:ident, $method:ident, $missing:expr, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $ret {
            // SAFETY: forwarded with SQLite's arguments to the default VFS's file inside ours.
            unsafe {
                match below_methods(file).$method {
                    Some(method) => method(below(file) $(, $arg)*),
                    None => $missing,
                }
            }
        }
    };
}

/// Forwards a call that could see the file's bytes or size, after writing the held frames.
macro_rules! forward_after_held {
    ($name:ident, $method:ident, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: the file is open; forwarded with SQLite's arguments to the default VFS's file
            // inside ours once the held frames are in it.
            unsafe {
                let written = write_held(file);
                if written != ffi::SQLITE_OK {
                    return written;
                }
                match below_methods(file).$method {
                    Some(method) => method(below(file) $(, $arg)*),
                    None => $missing,
                }
            }
        }
    };
}

forward_after_held!(read, xRead, ffi::SQLITE_IOERR_READ, (buf: *mut c_void, amount: c_int, offset: ffi::sqlite3_int64));
forward_after_held!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: ffi::sqlite3_int64));
forward_after_held!(sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int));
forward_after_held!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut ffi::sqlite3_int64));
// A control may look at the file.
forward_after_held!(file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, arg: *mut c_void));

forward!(lock, xLock, ffi::SQLITE_IOERR_LOCK, (level: c_int) -> c_int);
forward!(unlock, xUnlock, ffi::SQLITE_IOERR_UNLOCK, (level: c_int) -> c_int);
forward!(check_reserved_lock, xCheckReservedLock, ffi::SQLITE_IOERR_CHECKRESERVEDLOCK, (out: *mut c_int) -> c_int);
forward!(sector_size, xSectorSize, 4096, () -> c_int);
forward!(device_characteristics, xDeviceCharacteristics, 0, () -> c_int);
forward!(shm_map, xShmMap, ffi::SQLITE_IOERR_SHMMAP, (region: c_int, size: c_int, extend: c_int, out: *mut *mut c_void) -> c_int);
forward!(shm_lock, xShmLock, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, n: c_int, flags: c_int) -> c_int);
forward!(shm_unmap, xShmUnmap, ffi::SQLITE_OK, (delete: c_int) -> c_int);
forward!(fetch, xFetch, ffi::SQLITE_OK, (offset: ffi::sqlite3_int64, amount: c_int, out: *mut *mut c_void) -> c_int);
forward!(unfetch, xUnfetch, ffi::SQLITE_OK, (offset: ffi::sqlite3_int64, page: *mut c_void) -> c_int);

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: forwarded to the default VFS's file inside ours.
    unsafe {
        if let Some(barrier) = below_methods(file).xShmBarrier {
            barrier(below(file));
        }
    }
}

/// Writes `bytes` at `offset` of a file below, as is.
///
/// # Safety
/// `file` is an open file of the default VFS.
unsafe fn write_below(file: *mut ffi::sqlite3_file, bytes: &[u8], offset: i64) -> c_int {
    let Ok(amount) = c_int::try_from(bytes.len()) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: the caller's open file; `bytes` is readable for the call.
    unsafe {
        match (*(*file).pMethods).xWrite {
            Some(write) => write(file, bytes.as_ptr().cast(), amount, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

/// Writes `bytes` at `offset`, signing them first on this thread if they are the page whose signature
/// the provider left unfilled.
///
/// # Safety
/// As [`write_below`].
unsafe fn write_signed(file: *mut ffi::sqlite3_file, bytes: &[u8], offset: i64) -> c_int {
    let Some((unsigned, out, signed)) = unsigned_within(bytes.as_ptr() as usize, bytes.len())
    else {
        // SAFETY: the caller's file.
        return unsafe { write_below(file, bytes, offset) };
    };
    let mut page = bytes.to_vec();
    let mut signature = [0; SHA512_LEN];
    if !unsigned.signer.sign(
        &page[signed..signed + unsigned.signed_len],
        unsigned.second.bytes(),
        &mut signature,
    ) {
        return ffi::SQLITE_IOERR_WRITE;
    }
    page[out..out + SHA512_LEN].copy_from_slice(&signature);
    // SAFETY: the caller's file.
    unsafe { write_below(file, &page, offset) }
}

/// Registers `buf` as a frame source of the log file at `log`.
fn remember_source(buf: usize, len: usize, log: usize) {
    if let Ok(mut sources) = FRAME_SOURCES.lock()
        && !sources
            .iter()
            .any(|&(start, n, _)| start == buf && n == len)
    {
        sources.push((buf, len, log));
    }
}

/// Forgets the frame sources the log file at `log` registered (it is closing, and so may its codec).
fn forget_sources(log: usize) {
    if let Ok(mut sources) = FRAME_SOURCES.lock() {
        sources.retain(|&(_, _, file)| file != log);
        SOURCES_FORGOTTEN.fetch_add(1, Ordering::Release);
    }
}

/// A page held in its frame: final, or waiting for its signature.
enum HeldPage {
    Final(Box<[u8]>),
    Unsigned {
        signature: Arc<QueuedSignature>,
        out: usize,
    },
}

struct HeldFrame {
    offset: i64,
    header: [u8; FRAME_HEADER],
    page: HeldPage,
}

impl HeldFrame {
    fn page_len(&self) -> usize {
        match &self.page {
            HeldPage::Final(page) => page.len(),
            HeldPage::Unsigned { signature, .. } => signature.page().len(),
        }
    }
}

/// A log's frames not yet written, in file order and back to back.
#[derive(Default)]
struct HeldFrames {
    held: Vec<HeldFrame>,
    /// A frame header written and its page not yet (SQLite writes the two in turn).
    header: Option<(i64, [u8; FRAME_HEADER])>,
    /// Page buffers of frames written out, for the next frames' copies.
    spare: Vec<Box<[u8]>>,
    /// Signatures of frames written out, for the next frames' pages.
    spare_signatures: Vec<Arc<QueuedSignature>>,
    /// The frames being written out, back to back; kept for the next commit's.
    out: Vec<u8>,
    /// The frame sources this log has registered (`FRAME_SOURCES`), so a page's write checks here.
    sources: Vec<(usize, usize)>,
}

impl HeldFrames {
    /// One write to the log.
    fn write(
        &mut self,
        log: usize,
        below: *mut ffi::sqlite3_file,
        bytes: &[u8],
        offset: i64,
    ) -> c_int {
        if bytes.len() == FRAME_HEADER {
            // A frame's header: held until its page comes. (A header alone, SQLite rewriting the
            // checksums of frames already written, goes out as it is before the next call.)
            if self.header.is_some() {
                let code = self.write_out(below);
                if code != ffi::SQLITE_OK {
                    return code;
                }
            }
            let mut header = [0; FRAME_HEADER];
            header.copy_from_slice(bytes);
            self.header = Some((offset, header));
            return ffi::SQLITE_OK;
        }
        if let Some((at, header)) = self.header
            && Some(offset) == at.checked_add(FRAME_HEADER as i64)
            && offset >= WAL_HEADER as i64
        {
            self.header = None;
            let contiguous = self
                .held
                .last()
                .is_none_or(|last| last.offset + (FRAME_HEADER + last.page_len()) as i64 == at);
            if !contiguous {
                let code = self.write_out(below);
                if code != ffi::SQLITE_OK {
                    return code;
                }
            }
            let (start, len) = (bytes.as_ptr() as usize, bytes.len());
            // Only a codec's buffer is a frame source (a plain database's frames come from its page
            // cache, a buffer per page, and have no signature to leave unfilled).
            let encrypted = ENCRYPTED_INTO.with(std::cell::Cell::get);
            if encrypted >= start
                && encrypted < start + len
                && !self.sources.contains(&(start, len))
            {
                // Once per codec buffer: the process-wide list is only read where a page is encrypted.
                self.sources.push((start, len));
                remember_source(start, len, log);
            }
            let page = match unsigned_within(start, len) {
                Some((unsigned, out, signed)) => {
                    let signed = signed..signed + unsigned.signed_len;
                    let mut spare = self.spare_signatures.pop();
                    let refilled = spare.as_mut().is_some_and(|spare| {
                        QueuedSignature::refill(
                            spare,
                            bytes,
                            signed.clone(),
                            unsigned.second,
                            &unsigned.signer,
                        )
                    });
                    let signature = if refilled {
                        spare
                    } else {
                        QueuedSignature::new(
                            self.copy_of(bytes),
                            signed,
                            unsigned.second,
                            unsigned.signer,
                        )
                    };
                    let Some(signature) = signature else {
                        return ffi::SQLITE_IOERR_WRITE;
                    };
                    SIGNED_AFTER_HANDING_ON.fetch_add(1, Ordering::Relaxed);
                    signing_alongside::queue(Arc::clone(&signature));
                    HeldPage::Unsigned { signature, out }
                }
                None => HeldPage::Final(self.copy_of(bytes)),
            };
            self.held.push(HeldFrame {
                offset: at,
                header,
                page,
            });
            let commit = header[4..8] != [0; 4];
            if commit || self.held.len() >= MOST_HELD {
                return self.write_out(below);
            }
            return ffi::SQLITE_OK;
        }
        // Anything else (the log's header, a page rewritten in place) goes out as it is, after what
        // is held, signed here if its signature was left unfilled.
        let code = self.write_out(below);
        if code != ffi::SQLITE_OK {
            return code;
        }
        // SAFETY: the log's open inner file.
        unsafe { write_signed(below, bytes, offset) }
    }

    /// A copy of `bytes` in a spare buffer if one fits.
    fn copy_of(&mut self, bytes: &[u8]) -> Box<[u8]> {
        match self.spare.pop() {
            Some(mut page) if page.len() == bytes.len() => {
                page.copy_from_slice(bytes);
                page
            }
            _ => bytes.into(),
        }
    }

    /// Signs, checksums and writes every held frame, then a header written alone.
    fn write_out(&mut self, below: *mut ffi::sqlite3_file) -> c_int {
        let code = self.write_frames(below);
        if let Some((at, header)) = self.header.take()
            && code == ffi::SQLITE_OK
        {
            // SAFETY: the log's open inner file.
            return unsafe { write_below(below, &header, at) };
        }
        code
    }

    fn write_frames(&mut self, below: *mut ffi::sqlite3_file) -> c_int {
        let Some(first) = self.held.first() else {
            return ffi::SQLITE_OK;
        };
        let (start, first_len) = (first.offset, first.page_len());
        // The checksums chain on from the frame before (or the log's header) as the file has them,
        // read again at each write-out because another connection may have appended to or restarted
        // the log since; the header's magic says in which byte order the words are summed.
        let mut wal_header = [0u8; WAL_HEADER];
        // SAFETY: the log's open inner file.
        let code = unsafe { read_below(below, &mut wal_header, 0) };
        if code != ffi::SQLITE_OK {
            return code;
        }
        let big_endian = wal_header[3] & 1 == 1;
        let mut chain = [0u8; 8];
        if start == WAL_HEADER as i64 {
            chain.copy_from_slice(&wal_header[24..32]);
        } else {
            let before = start - (FRAME_HEADER + first_len) as i64 + 16;
            // SAFETY: as above.
            let code = unsafe { read_below(below, &mut chain, before) };
            if code != ffi::SQLITE_OK {
                return code;
            }
        }
        let mut sums = (be_word(&chain[0..4]), be_word(&chain[4..8]));
        // The newest pages not yet taken by the helper are signed here while it signs the oldest.
        for frame in self.held.iter().rev() {
            if let HeldPage::Unsigned { signature, .. } = &frame.page {
                signature.sign_if_queued();
            }
        }
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let mut failed = false;
        // SQLite's checksum of each frame, as it computed it (over the page before its signature, and
        // chained from its own sums), and ours for the frame before.
        let mut sqlite_before: Option<(u32, u32)> = None;
        let mut shift = FrameShift::default();
        for frame in self.held.drain(..) {
            let at = out.len();
            out.extend_from_slice(&frame.header);
            let mut changed = None;
            let page = match frame.page {
                HeldPage::Final(page) => {
                    out.extend_from_slice(&page);
                    Some(page)
                }
                HeldPage::Unsigned {
                    signature,
                    out: place,
                } => {
                    let Some(signed) = signature.signature() else {
                        failed = true;
                        break;
                    };
                    out.extend_from_slice(signature.page());
                    let at_place = at + FRAME_HEADER + place;
                    let mut before = [0u8; SHA512_LEN];
                    before.copy_from_slice(&out[at_place..at_place + SHA512_LEN]);
                    out[at_place..at_place + SHA512_LEN].copy_from_slice(&signed);
                    changed = Some((place, before, signed));
                    if self.spare_signatures.len() < MOST_HELD {
                        self.spare_signatures.push(signature);
                    }
                    None
                }
            };
            if let Some(page) = page
                && self.spare.len() < MOST_HELD
            {
                self.spare.push(page);
            }
            let header = &out[at..at + FRAME_HEADER];
            let by_sqlite = (be_word(&header[16..20]), be_word(&header[20..24]));
            // Frames SQLite will checksum again at commit (it zeroes their salts and sums) are not
            // chained in its running sums.
            let chained_by_sqlite = header[8..24] != [0; 16];
            let page_len = out.len() - at - FRAME_HEADER;
            sums = match sqlite_before {
                Some(sqlite_sums) if chained_by_sqlite => shift.carry(
                    big_endian,
                    page_len,
                    by_sqlite,
                    (
                        sums.0.wrapping_sub(sqlite_sums.0),
                        sums.1.wrapping_sub(sqlite_sums.1),
                    ),
                    changed.as_ref(),
                ),
                _ => None,
            }
            .unwrap_or_else(|| {
                let sums = checksum(big_endian, &out[at..at + 8], sums);
                checksum(big_endian, &out[at + FRAME_HEADER..], sums)
            });
            sqlite_before = chained_by_sqlite.then_some(by_sqlite);
            out[at + 16..at + 20].copy_from_slice(&sums.0.to_be_bytes());
            out[at + 20..at + 24].copy_from_slice(&sums.1.to_be_bytes());
        }
        let code = if failed {
            ffi::SQLITE_IOERR_WRITE
        } else {
            write_pieces(below, &out, start)
        };
        self.out = out;
        code
    }
}

/// Writes `bytes` at `offset` of a file below in pieces the default VFS takes.
fn write_pieces(below: *mut ffi::sqlite3_file, bytes: &[u8], offset: i64) -> c_int {
    // The default VFS writes at most 128 KiB a call (it masks the length to 17 bits).
    let mut at = offset;
    for piece in bytes.chunks(WRITE_AT_MOST) {
        // SAFETY: the log's open inner file.
        let code = unsafe { write_below(below, piece, at) };
        if code != ffi::SQLITE_OK {
            return code;
        }
        at += piece.len() as i64;
    }
    ffi::SQLITE_OK
}

/// Reads `buf.len()` bytes at `offset` of a file below.
///
/// # Safety
/// As [`write_below`].
unsafe fn read_below(file: *mut ffi::sqlite3_file, buf: &mut [u8], offset: i64) -> c_int {
    let Ok(amount) = c_int::try_from(buf.len()) else {
        return ffi::SQLITE_IOERR_READ;
    };
    // SAFETY: the caller's open file; `buf` is writable for the call.
    unsafe {
        match (*(*file).pMethods).xRead {
            Some(read) => read(file, buf.as_mut_ptr().cast(), amount, offset),
            None => ffi::SQLITE_IOERR_READ,
        }
    }
}

/// A 4-byte word of the log in the given byte order.
fn log_word(bytes: &[u8], big_endian: bool) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(bytes);
    if big_endian {
        u32::from_be_bytes(word)
    } else {
        u32::from_le_bytes(word)
    }
}

/// A checksum word as a frame header stores it (always big-endian).
fn be_word(bytes: &[u8]) -> u32 {
    log_word(bytes, true)
}

/// A 2×2 matrix over the integers modulo 2^32: how a frame's checksum words carry a change.
type Matrix = [[u32; 2]; 2];

/// One step of SQLite's log checksum over a pair of words: `s1 += x0 + s2; s2 += x1 + s1`, which is
/// `(s1, s2) ← STEP · (s1, s2) + (x0, x0 + x1)`. Sums modulo 2^32 are linear, so a change to the sums
/// before a frame, or to a pair inside it, changes the frame's checksum by that change carried
/// through the pairs after it: STEP to the power of their number.
const STEP: Matrix = [[1, 1], [1, 2]];

fn times(a: Matrix, b: Matrix) -> Matrix {
    let cell = |i: usize, j: usize| {
        a[i][0]
            .wrapping_mul(b[0][j])
            .wrapping_add(a[i][1].wrapping_mul(b[1][j]))
    };
    [[cell(0, 0), cell(0, 1)], [cell(1, 0), cell(1, 1)]]
}

fn carried(m: Matrix, (a, b): (u32, u32)) -> (u32, u32) {
    (
        m[0][0]
            .wrapping_mul(a)
            .wrapping_add(m[0][1].wrapping_mul(b)),
        m[1][0]
            .wrapping_mul(a)
            .wrapping_add(m[1][1].wrapping_mul(b)),
    )
}

fn step_power(mut n: usize) -> Matrix {
    let (mut result, mut base) = ([[1, 0], [0, 1]], STEP);
    while n > 0 {
        if n & 1 == 1 {
            result = times(result, base);
        }
        base = times(base, base);
        n >>= 1;
    }
    result
}

/// A frame's checksum from the one SQLite computed, without summing the page again.
#[derive(Default)]
struct FrameShift {
    /// The page length and STEP to the power of a frame's pairs (its header's first 8 bytes and page).
    whole: Option<(usize, Matrix)>,
}

impl FrameShift {
    /// Our checksum of a frame of `page_len` bytes whose checksum SQLite computed as `by_sqlite` from
    /// sums `seed_change` away from ours, with the signature's bytes at `changed` (where, before,
    /// after) put in after it did. None where the signature is not at a pair's start.
    fn carry(
        &mut self,
        big_endian: bool,
        page_len: usize,
        by_sqlite: (u32, u32),
        seed_change: (u32, u32),
        changed: Option<&(usize, [u8; SHA512_LEN], [u8; SHA512_LEN])>,
    ) -> Option<(u32, u32)> {
        let pairs = 1 + page_len / 8;
        let whole = match self.whole {
            Some((len, whole)) if len == page_len => whole,
            _ => {
                let whole = step_power(pairs);
                self.whole = Some((page_len, whole));
                whole
            }
        };
        let add = |(a, b): (u32, u32), (c, d): (u32, u32)| (a.wrapping_add(c), b.wrapping_add(d));
        let mut sums = add(by_sqlite, carried(whole, seed_change));
        if let Some((place, before, after)) = changed {
            if place % 8 != 0 || place + SHA512_LEN > page_len {
                return None;
            }
            let word = |bytes: &[u8]| log_word(bytes, big_endian);
            // The pair at byte `place + 8 i` of the page is the frame's pair 1 + place / 8 + i.
            let last = 1 + (place + SHA512_LEN) / 8 - 1;
            let mut after_it = step_power(pairs - 1 - last);
            for i in (0..SHA512_LEN / 8).rev() {
                let (old, new) = (&before[8 * i..8 * i + 8], &after[8 * i..8 * i + 8]);
                let x0 = word(&new[0..4]).wrapping_sub(word(&old[0..4]));
                let x1 = word(&new[4..8]).wrapping_sub(word(&old[4..8]));
                sums = add(sums, carried(after_it, (x0, x0.wrapping_add(x1))));
                after_it = times(after_it, STEP);
            }
        }
        Some(sums)
    }
}

/// SQLite's log checksum (`walChecksumBytes`) of `bytes` (a multiple of 8 long) chained from `sums`.
fn checksum(big_endian: bool, bytes: &[u8], sums: (u32, u32)) -> (u32, u32) {
    if big_endian {
        chain(bytes, sums, u32::from_be_bytes)
    } else {
        chain(bytes, sums, u32::from_le_bytes)
    }
}

#[inline(always)]
fn chain(bytes: &[u8], (mut s1, mut s2): (u32, u32), word: fn([u8; 4]) -> u32) -> (u32, u32) {
    for pair in bytes.chunks_exact(8) {
        let (first, second) = pair.split_at(4);
        let (Ok(first), Ok(second)) = (<[u8; 4]>::try_from(first), <[u8; 4]>::try_from(second))
        else {
            continue;
        };
        s1 = s1.wrapping_add(word(first).wrapping_add(s2));
        s2 = s2.wrapping_add(word(second).wrapping_add(s1));
    }
    (s1, s2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: &mut u64, n: usize) -> Vec<u8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                *seed as u8
            })
            .collect()
    }

    /// A frame's checksum carried from SQLite's (other sums before it, a signature put in after) equals
    /// the checksum summed again over the finished frame, in both byte orders and page sizes.
    #[test]
    fn carried_checksums_equal_checksums_summed_again() {
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        for (page_len, big_endian) in [(4096, false), (4096, true), (1024, false), (65_536, true)] {
            let mut shift = FrameShift::default();
            for _ in 0..4 {
                let header = bytes(&mut seed, 8);
                let mut page = bytes(&mut seed, page_len);
                let seeds = bytes(&mut seed, 16);
                let word = |at: usize| be_word(&seeds[at..at + 4]);
                let sqlite_seed = (word(0), word(4));
                let our_seed = (word(8), word(12));
                let sum = |seed: (u32, u32), page: &[u8]| {
                    checksum(big_endian, page, checksum(big_endian, &header, seed))
                };
                let by_sqlite = sum(sqlite_seed, &page);
                let place = page_len - SHA512_LEN;
                let mut before = [0u8; SHA512_LEN];
                before.copy_from_slice(&page[place..]);
                let mut after = [0u8; SHA512_LEN];
                after.copy_from_slice(&bytes(&mut seed, SHA512_LEN));
                page[place..].copy_from_slice(&after);
                let change = (
                    our_seed.0.wrapping_sub(sqlite_seed.0),
                    our_seed.1.wrapping_sub(sqlite_seed.1),
                );
                assert_eq!(
                    shift.carry(
                        big_endian,
                        page_len,
                        by_sqlite,
                        change,
                        Some(&(place, before, after))
                    ),
                    Some(sum(our_seed, &page))
                );
                // A frame whose page SQLite wrote as it is only carries the other sums before it.
                let unchanged = sum(sqlite_seed, &page);
                assert_eq!(
                    shift.carry(big_endian, page_len, unchanged, change, None),
                    Some(sum(our_seed, &page))
                );
            }
        }
    }
}
