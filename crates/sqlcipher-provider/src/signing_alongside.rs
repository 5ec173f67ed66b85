//! A written page's signature hashed on a second core while the writer is still encrypting the page.
//!
//! SQLCipher writes a page by encrypting it (AES-256-CBC) and then signing the ciphertext and IV
//! (HMAC-SHA512), one after the other on the writing thread. Each is serial within the page (CBC chains
//! block to block, SHA-512 hashes in order), but the signature's inner hash only needs ciphertext that is
//! already written. So this module's one helper thread hashes each stretch of ciphertext as soon as the
//! writer has encrypted it, and a page costs about the slower of the two instead of their sum. The bytes
//! are the same (the same keyed inner state over the same input); the writer still does the AES, and
//! finishes the HMAC (page number, outer hash) in SQLCipher's signing call that follows.
//!
//! The helper spins between pages, because a commit's pages come a few microseconds apart and waking a
//! parked thread costs more than that; it parks after [`IDLE_BEFORE_PARKING`] without a page. A writer that
//! finds it parked, or busy with another connection's page, does its page alone (and wakes it for the next
//! ones). A process with one core never starts it, and a forked child never uses its parent's.
//!
//! The helper hashes its own copy of the page, which the writer fills stretch by stretch, never the
//! writer's buffer. So a writer never has to wait for it: when the helper is off its core (the machine is
//! busy, or the hypervisor runs another guest), a writer that waited [`GIVE_UP_AFTER`] for a page's hash
//! gives the page up, signs it itself and returns, and the helper lets go of the copy whenever it runs
//! again. Until then writers find it busy and do their pages alone, so a helper off its core costs one
//! page's wait, not one per page.
//!
//! The same helper signs the pages of held log frames ([`crate::held_wal`]) from a queue, oldest first,
//! while the frames' flush signs the newest itself; each queued signature is made by whichever takes it
//! first, and a flush whose helper has not finished one within [`GIVE_UP_AFTER`] makes it itself.
//! [`sign_alongside`] turns both off.

use std::cell::UnsafeCell;
use std::collections::VecDeque;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crate::{HmacSha512, SHA512_LEN, Sha512State};

/// Ciphertext the writer encrypts between two hand-overs: 32 AES blocks, 4 SHA-512 blocks. Smaller
/// stretches start the hash sooner but cost a hand-over each.
pub(crate) const STRETCH: usize = 512;
/// How long the helper spins without a page before it parks (a commit's pages are microseconds apart).
const IDLE_BEFORE_PARKING: Duration = Duration::from_micros(200);
/// How long a writer that has encrypted its page waits for the helper's hash before it signs the page
/// itself: the helper is then off its core. A page's hash takes 5 to 8 µs and normally ends a few
/// microseconds after the encryption.
const GIVE_UP_AFTER: Duration = Duration::from_micros(25);
/// The longest page the helper's copy holds (SQLCipher's largest page size); longer ones go alone.
const COPY_CAPACITY: usize = 65_536;

// The helper's states; the comments say which side moves it out of each.
/// Waiting for a page (writer: claims it; helper: parks after being idle).
const SPINNING: u8 = 0;
/// A writer is setting up a page (writer: starts it).
const CLAIMED: u8 = 1;
/// Hashing behind the writer (helper: finishes).
const WORKING: u8 = 2;
/// The page's hash is ready (writer: takes it and frees the helper).
const DONE: u8 = 3;
/// Asleep (writer: asks it to wake).
const PARKED: u8 = 4;
/// Asked to wake (helper: spins again).
const WAKING: u8 = 5;
/// The writer gave the page up (it waited too long, or its encryption failed); the helper drops it
/// (helper: spins again once it no longer reads the copy).
const GIVEN_UP: u8 = 6;
/// Signing pages of held WAL frames (`crate::held_wal`) from the queue (helper: spins again when it is
/// empty). Writers find the helper busy and do their pages alone.
const SERVING: u8 = 7;

// A queued signature's states.
/// In the queue; whoever takes it first (the helper or the frames' flush) signs it.
const QUEUED: u8 = 0;
/// Being signed by whoever took it.
const TAKEN: u8 = 1;
/// Signed by the helper: `signature` holds it.
const SIGNED: u8 = 2;
/// The helper's signing failed; the flush signs it itself.
const FAILED: u8 = 3;

static ENABLED: AtomicBool = AtomicBool::new(true);
static PAGES_HASHED_ALONGSIDE: AtomicU64 = AtomicU64::new(0);
static PAGES_GIVEN_UP: AtomicU64 = AtomicU64::new(0);
static PAGES_SIGNED_BEHIND: AtomicU64 = AtomicU64::new(0);
/// Signatures of held WAL frames waiting for the helper, oldest first.
static QUEUE: Mutex<VecDeque<Arc<QueuedSignature>>> = Mutex::new(VecDeque::new());
/// How many are in `QUEUE`: the spinning helper reads this instead of taking the lock.
static QUEUE_LEN: AtomicUsize = AtomicUsize::new(0);
static HELPER: OnceLock<Option<Helper>> = OnceLock::new();
/// Tests: the helper sleeps this many microseconds before hashing a page of [`STALL_PAGES_OF_LEN`]
/// bytes, as if it were off its core.
#[cfg(test)]
pub(crate) static STALL_MICROS: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
pub(crate) static STALL_PAGES_OF_LEN: AtomicUsize = AtomicUsize::new(0);

/// Turns hashing on the second core on or off for pages written from now on (it is on by default where
/// the machine has two cores or more), alongside their encryption and after SQLCipher hands them on
/// (`held_wal`). Off, every page is encrypted and then signed on the writing thread; the bytes written
/// are the same either way.
pub fn sign_alongside(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// How many pages this process has signed with their hash computed on the helper thread.
pub fn pages_signed_alongside() -> u64 {
    PAGES_HASHED_ALONGSIDE.load(Ordering::Relaxed)
}

/// How many pages of held WAL frames the helper has signed after SQLCipher handed them on.
pub fn pages_signed_behind() -> u64 {
    PAGES_SIGNED_BEHIND.load(Ordering::Relaxed)
}

/// Whether a written page may have its signature made after SQLCipher hands it on: the helper is on.
pub(crate) fn signs_behind() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// How many pages a writer handed to the helper and then signed itself, because the helper did not
/// finish in time (it was off its core) or the encryption failed.
pub fn pages_given_up() -> u64 {
    PAGES_GIVEN_UP.load(Ordering::Relaxed)
}

/// The helper thread, the one page it works on and its copy of that page's bytes.
struct Helper {
    state: AtomicU8,
    /// How many bytes of the page the writer has copied: the helper may hash `[0, ready)` of `copy`.
    ready: AtomicUsize,
    page: UnsafeCell<Page>,
    /// The page's bytes as the writer finishes them; `[0, ready)` is only read, the rest only written.
    copy: Box<[UnsafeCell<u8>]>,
    thread: std::thread::Thread,
    /// The process that started the thread (a forked child has no helper thread).
    process: u32,
}

// SAFETY: `page` and `copy` are only touched by the side that `state` hands them to (the writer while
// CLAIMED, and after DONE; the helper while WORKING, and while GIVEN_UP until it stores SPINNING), except
// that while WORKING the writer writes `copy` beyond `ready` and the helper reads it below `ready`
// (published by a Release store of `ready`, read with Acquire). Every hand-over of the state is a
// Release store or exchange read by an Acquire load.
unsafe impl Sync for Helper {}

impl Helper {
    /// Where the copy's bytes start (`UnsafeCell<u8>` has `u8`'s layout).
    fn copy_start(&self) -> *mut u8 {
        UnsafeCell::raw_get(self.copy.as_ptr())
    }
}

/// The page being hashed: how many bytes, and the hash state before and after them.
struct Page {
    len: usize,
    hash: Option<Sha512State>,
}

fn helper() -> Option<&'static Helper> {
    let helper = HELPER
        .get_or_init(|| {
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            (cores >= 2).then(start_helper).flatten()
        })
        .as_ref()?;
    (helper.process == std::process::id()).then_some(helper)
}

fn start_helper() -> Option<Helper> {
    let thread = std::thread::Builder::new()
        .name("sqlcipher-signing".into())
        .spawn(|| {
            // The thread starts inside HELPER's initialisation; wait until it is stored.
            if let Some(helper) = HELPER.wait() {
                helper.run();
            }
        })
        .ok()?;
    Some(Helper {
        state: AtomicU8::new(SPINNING),
        ready: AtomicUsize::new(0),
        page: UnsafeCell::new(Page { len: 0, hash: None }),
        copy: (0..COPY_CAPACITY).map(|_| UnsafeCell::new(0)).collect(),
        thread: thread.thread().clone(),
        process: std::process::id(),
    })
}

impl Helper {
    fn run(&self) {
        let mut idle_since = Instant::now();
        let mut spins: u32 = 0;
        loop {
            match self.state.load(Ordering::Acquire) {
                WORKING => {
                    self.hash_page();
                    if self
                        .state
                        .compare_exchange(WORKING, DONE, Ordering::AcqRel, Ordering::Acquire)
                        .is_err()
                    {
                        self.drop_given_up();
                    }
                    idle_since = Instant::now();
                }
                GIVEN_UP => {
                    self.drop_given_up();
                    idle_since = Instant::now();
                }
                PARKED => {
                    std::thread::park();
                    // Woken by a writer (WAKING) or spuriously (still PARKED): either way, spin again.
                    self.spin_again(WAKING);
                    self.spin_again(PARKED);
                    idle_since = Instant::now();
                }
                WAKING => {
                    self.spin_again(WAKING);
                    idle_since = Instant::now();
                }
                SPINNING
                    if QUEUE_LEN.load(Ordering::Relaxed) > 0
                        && self
                            .state
                            .compare_exchange(
                                SPINNING,
                                SERVING,
                                Ordering::Acquire,
                                Ordering::Relaxed,
                            )
                            .is_ok() =>
                {
                    serve_queue();
                    self.state.store(SPINNING, Ordering::Release);
                    idle_since = Instant::now();
                }
                state => {
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                    if state == SPINNING
                        && spins.is_multiple_of(256)
                        && idle_since.elapsed() >= IDLE_BEFORE_PARKING
                    {
                        // A writer claiming at the same moment wins or loses this exchange cleanly.
                        let _ = self.state.compare_exchange(
                            SPINNING,
                            PARKED,
                            Ordering::AcqRel,
                            Ordering::Relaxed,
                        );
                    }
                }
            }
        }
    }

    /// Moves from `from` (asleep, or asked to wake) back to waiting for a page; a no-op in any other state.
    fn spin_again(&self, from: u8) {
        let _ = self
            .state
            .compare_exchange(from, SPINNING, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// Hashes the page's bytes as the writer copies them, leaving the state (or None if hashing failed
    /// or the writer gave the page up) in `page.hash`.
    fn hash_page(&self) {
        // SAFETY: the state was WORKING (Acquire-loaded by `run`), so the writer has handed `page` over
        // and does not touch it again (it takes it back after DONE, or gives it up for good).
        let page = unsafe { &mut *self.page.get() };
        let Some(mut hash) = page.hash.take() else {
            return;
        };
        #[cfg(test)]
        if page.len == STALL_PAGES_OF_LEN.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_micros(STALL_MICROS.load(Ordering::Relaxed)));
        }
        let mut hashed = 0;
        while hashed < page.len {
            let ready = self.ready.load(Ordering::Acquire).min(page.len);
            if ready <= hashed {
                if self.state.load(Ordering::Relaxed) == GIVEN_UP {
                    return;
                }
                std::hint::spin_loop();
                continue;
            }
            // SAFETY: `page.len` fits the copy (`claim`), and the writer copied `[0, ready)` before it
            // stored `ready` (Release, loaded above with Acquire); no one writes it again before this
            // helper stores SPINNING.
            let bytes = unsafe {
                std::slice::from_raw_parts(
                    self.copy_start().add(hashed).cast_const(),
                    ready - hashed,
                )
            };
            if !hash.update(bytes) {
                return;
            }
            hashed = ready;
        }
        page.hash = Some(hash);
    }

    /// Drops a page its writer gave up and waits for the next one.
    fn drop_given_up(&self) {
        // SAFETY: the state is GIVEN_UP (the writer's exchange, Acquire-loaded by the caller): the writer
        // has let go of `page` and no writer claims it before the SPINNING stored below.
        unsafe { (*self.page.get()).hash = None };
        self.state.store(SPINNING, Ordering::Release);
    }
}

/// The helper, claimed by one writer for one page; dropping an unused claim frees it.
pub(crate) struct Claim(&'static Helper);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.state.store(SPINNING, Ordering::Release);
    }
}

/// Claims the helper for a page of `len` bytes, if it is on, running and free and the page fits its
/// copy. A parked helper is asked to wake for the pages after this one.
pub(crate) fn claim(len: usize) -> Option<Claim> {
    if !ENABLED.load(Ordering::Relaxed) || len > COPY_CAPACITY {
        return None;
    }
    let helper = helper()?;
    match helper
        .state
        .compare_exchange(SPINNING, CLAIMED, Ordering::Acquire, Ordering::Relaxed)
    {
        Ok(_) => Some(Claim(helper)),
        Err(PARKED) => {
            if helper
                .state
                .compare_exchange(PARKED, WAKING, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                helper.thread.unpark();
            }
            None
        }
        Err(_) => None,
    }
}

impl Claim {
    /// Runs `write(offset, len)` over `[0, written)` of the page in stretches of [`STRETCH`] bytes,
    /// copying each stretch to the helper once it is written and then `[written, len)`, which must
    /// already hold its final bytes, while the helper hashes the copy from `hash`. Returns whether every
    /// `write` succeeded, and the hash state after the page's `len` bytes (None if a write or the hashing
    /// failed, or the helper did not finish within [`GIVE_UP_AFTER`] of the last copy).
    ///
    /// # Safety
    /// `start` points at `len` bytes that stay readable until this returns; `write` writes exactly the
    /// stretch of `[0, written)` it is given, and nothing else writes the page while this runs.
    pub(crate) unsafe fn hash_behind(
        self,
        start: *const u8,
        len: usize,
        written: usize,
        hash: Sha512State,
        mut write: impl FnMut(usize, usize) -> bool,
    ) -> (bool, Option<Sha512State>) {
        if len > COPY_CAPACITY || written > len {
            // Not a page this claim can take (`claim` checks the length): encrypt it alone, unhashed.
            drop(self);
            let mut done = 0;
            while done < written {
                let stretch = STRETCH.min(written - done);
                if !write(done, stretch) {
                    return (false, None);
                }
                done += stretch;
            }
            return (true, None);
        }
        let helper = self.0;
        // From here the claim is released below (or by the helper, for a page given up), not when
        // `self` drops.
        std::mem::forget(self);
        // SAFETY: the state is CLAIMED by this writer, so the helper does not touch `page`.
        unsafe {
            *helper.page.get() = Page {
                len,
                hash: Some(hash),
            };
        }
        helper.ready.store(0, Ordering::Relaxed);
        helper.state.store(WORKING, Ordering::Release);
        let copy = helper.copy_start();
        let publish = |at: usize, n: usize, ready: usize| {
            // SAFETY: `[at, at + n)` lies within the caller's `len` readable bytes and within the copy
            // (`len` fits it, checked above); the helper reads only below `ready`, stored after the copy.
            unsafe { std::ptr::copy_nonoverlapping(start.add(at), copy.add(at), n) };
            helper.ready.store(ready, Ordering::Release);
        };
        let mut done = 0;
        let mut ok = true;
        while done < written {
            let stretch = STRETCH.min(written - done);
            if !write(done, stretch) {
                ok = false;
                break;
            }
            if done + stretch == written {
                // The last stretch goes with the bytes after it, in one hand-over.
                publish(done, len - done, len);
            } else {
                publish(done, stretch, done + stretch);
            }
            done += stretch;
        }
        if written == 0 {
            publish(0, len, len);
        }
        let mut waiting_since: Option<Instant> = None;
        let mut spins: u32 = 0;
        loop {
            // While this writer holds the page, the state is WORKING or (the helper's move) DONE.
            if helper.state.load(Ordering::Acquire) == DONE {
                break;
            }
            let give_up = !ok
                || (spins.is_multiple_of(64)
                    && waiting_since.get_or_insert_with(Instant::now).elapsed() >= GIVE_UP_AFTER);
            if give_up
                && helper
                    .state
                    .compare_exchange(WORKING, GIVEN_UP, Ordering::AcqRel, Ordering::Acquire)
                    .is_ok()
            {
                // The helper drops the page and frees itself when it runs again; until then writers
                // find it busy.
                PAGES_GIVEN_UP.fetch_add(1, Ordering::Relaxed);
                return (ok, None);
            }
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
        }
        // SAFETY: DONE (Acquire-loaded above) hands `page` back to this writer.
        let hash = unsafe { (*helper.page.get()).hash.take() };
        helper.state.store(SPINNING, Ordering::Release);
        let hash = hash.filter(|_| ok);
        if hash.is_some() {
            PAGES_HASHED_ALONGSIDE.fetch_add(1, Ordering::Relaxed);
        }
        (ok, hash)
    }
}

/// The part of a signed message after the page: SQLCipher's page number, a few bytes.
#[derive(Clone, Copy)]
pub(crate) struct Second {
    bytes: [u8; 16],
    len: usize,
}

impl Second {
    /// None if `bytes` is longer than a page number could be.
    pub(crate) fn new(bytes: &[u8]) -> Option<Self> {
        let mut second = Self {
            bytes: [0; 16],
            len: bytes.len(),
        };
        second.bytes.get_mut(..bytes.len())?.copy_from_slice(bytes);
        Some(second)
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// One written page's signature, made after SQLCipher handed the page on (`crate::held_wal` holds its
/// frame until then): HMAC-SHA512 of `page[signed]` then `second`, under `signer`.
pub(crate) struct QueuedSignature {
    state: AtomicU8,
    /// The page as SQLCipher wrote it, the signature's place still unfilled; only ever read.
    page: Box<[u8]>,
    signed: Range<usize>,
    second: Second,
    signer: Arc<HmacSha512>,
    /// The helper's result, written before it stores SIGNED and read only after.
    signature: UnsafeCell<[u8; SHA512_LEN]>,
}

// SAFETY: `signature` is written only by the thread whose exchange made the state TAKEN, before its
// Release store of SIGNED, and read only after an Acquire load of SIGNED; everything else is read-only
// while the signature is shared (`refill` needs the only reference).
unsafe impl Sync for QueuedSignature {}

impl std::fmt::Debug for QueuedSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueuedSignature")
            .field("state", &self.state.load(Ordering::Relaxed))
            .field("len", &self.page.len())
            .finish_non_exhaustive()
    }
}

impl QueuedSignature {
    /// `page` as written; `signed` is the part of it signed before `second`.
    pub(crate) fn new(
        page: Box<[u8]>,
        signed: Range<usize>,
        second: Second,
        signer: Arc<HmacSha512>,
    ) -> Option<Arc<Self>> {
        (signed.start <= signed.end && signed.end <= page.len()).then(|| {
            Arc::new(Self {
                state: AtomicU8::new(QUEUED),
                page,
                signed,
                second,
                signer,
                signature: UnsafeCell::new([0; SHA512_LEN]),
            })
        })
    }

    /// The page as written (without its signature).
    pub(crate) fn page(&self) -> &[u8] {
        &self.page
    }

    /// Makes `this` the signature of another page, if no one else holds it and its buffer fits `page`:
    /// a connection's held frames reuse their queued signatures instead of allocating new ones.
    pub(crate) fn refill(
        this: &mut Arc<Self>,
        page: &[u8],
        signed: Range<usize>,
        second: Second,
        signer: &Arc<HmacSha512>,
    ) -> bool {
        match Arc::get_mut(this) {
            Some(reused)
                if reused.page.len() == page.len()
                    && signed.start <= signed.end
                    && signed.end <= page.len() =>
            {
                reused.page.copy_from_slice(page);
                reused.signed = signed;
                reused.second = second;
                if !Arc::ptr_eq(&reused.signer, signer) {
                    reused.signer = Arc::clone(signer);
                }
                *reused.state.get_mut() = QUEUED;
                true
            }
            _ => false,
        }
    }

    /// Signs the page here if no one has taken it yet (the flush signs the newest pages while the
    /// helper signs the oldest); true if this call signed it.
    pub(crate) fn sign_if_queued(&self) -> bool {
        self.state
            .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
            && self.sign_taken()
    }

    /// Signs a page this thread took (TAKEN), leaving SIGNED (true) or FAILED.
    fn sign_taken(&self) -> bool {
        let mut out = [0; SHA512_LEN];
        if self.sign(&mut out) {
            // SAFETY: this thread took the page (TAKEN) and is the only writer of `signature`; no one
            // reads it before the SIGNED stored below.
            unsafe { *self.signature.get() = out };
            self.state.store(SIGNED, Ordering::Release);
            true
        } else {
            self.state.store(FAILED, Ordering::Release);
            false
        }
    }

    fn sign(&self, out: &mut [u8; SHA512_LEN]) -> bool {
        self.signer
            .sign(&self.page[self.signed.clone()], self.second.bytes(), out)
    }

    /// The signature: the helper's, or made here when the helper has not taken it yet, failed, or has
    /// not finished within [`GIVE_UP_AFTER`] (it is off its core). None if signing failed here too.
    pub(crate) fn signature(&self) -> Option<[u8; SHA512_LEN]> {
        let mut waiting_since: Option<Instant> = None;
        let mut spins: u32 = 0;
        loop {
            match self
                .state
                .compare_exchange(QUEUED, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) | Err(FAILED) => break,
                Err(SIGNED) => {
                    // SAFETY: SIGNED (Acquire) means its taker wrote `signature` and never touches it
                    // again.
                    return Some(unsafe { *self.signature.get() });
                }
                Err(_) => {
                    if spins.is_multiple_of(64)
                        && waiting_since.get_or_insert_with(Instant::now).elapsed() >= GIVE_UP_AFTER
                    {
                        break;
                    }
                    std::hint::spin_loop();
                    spins = spins.wrapping_add(1);
                }
            }
        }
        let mut out = [0; SHA512_LEN];
        self.sign(&mut out).then_some(out)
    }
}

/// Queues `signature` for the helper (waking it if parked). With no helper running the flush signs it.
pub(crate) fn queue(signature: Arc<QueuedSignature>) {
    let Some(helper) = helper() else {
        return;
    };
    if let Ok(mut queue) = QUEUE.lock() {
        queue.push_back(signature);
        QUEUE_LEN.store(queue.len(), Ordering::Relaxed);
    }
    if helper.state.load(Ordering::Relaxed) == PARKED
        && helper
            .state
            .compare_exchange(PARKED, WAKING, Ordering::AcqRel, Ordering::Relaxed)
            .is_ok()
    {
        helper.thread.unpark();
    }
}

/// The helper signs queued pages until the queue is empty; pages their flush took first are skipped.
fn serve_queue() {
    loop {
        let next = match QUEUE.lock() {
            Ok(mut queue) => {
                let next = queue.pop_front();
                QUEUE_LEN.store(queue.len(), Ordering::Relaxed);
                next
            }
            Err(_) => None,
        };
        let Some(job) = next else {
            return;
        };
        // A page its flush took first is skipped.
        if job.sign_if_queued() {
            PAGES_SIGNED_BEHIND.fetch_add(1, Ordering::Relaxed);
        }
    }
}
