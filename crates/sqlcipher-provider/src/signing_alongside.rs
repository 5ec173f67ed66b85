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
//! ones). A process with one core never starts it, and a forked child never uses its parent's. When the
//! machine is busy, the helper can be off its core while a writer waits for it: a writer that waited
//! longer than [`SLOW_WAIT`] for a page turns hashing alongside off for [`BACK_OFF`], so a loaded machine
//! pays that wait once, not once per page.

use std::cell::UnsafeCell;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::Sha512State;

/// Ciphertext the writer encrypts between two hand-overs: 32 AES blocks, 4 SHA-512 blocks. Smaller
/// stretches start the hash sooner but cost a hand-over each.
pub(crate) const STRETCH: usize = 512;
/// How long the helper spins without a page before it parks (a commit's pages are microseconds apart).
const IDLE_BEFORE_PARKING: Duration = Duration::from_micros(200);
/// A wait for the helper longer than this (a page takes about 10 µs) means it was off its core.
const SLOW_WAIT: Duration = Duration::from_micros(500);
/// How long writers do their pages alone after a slow wait.
const BACK_OFF: Duration = Duration::from_millis(100);
/// `ready` value telling the helper the writer gave up on the page (its encryption failed).
const ABANDONED: usize = usize::MAX;

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

static ENABLED: AtomicBool = AtomicBool::new(true);
static PAGES_HASHED_ALONGSIDE: AtomicU64 = AtomicU64::new(0);
static HELPER: OnceLock<Option<Helper>> = OnceLock::new();
/// Until when (nanoseconds after the helper started) writers do their pages alone.
static BACKED_OFF_UNTIL: AtomicU64 = AtomicU64::new(0);

/// Turns hashing on the second core on or off for pages written from now on (it is on by default where
/// the machine has two cores or more). Off, every page is encrypted and then signed on the writing
/// thread; the bytes written are the same either way.
pub fn sign_alongside(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// How many pages this process has signed with their hash computed on the helper thread.
pub fn pages_signed_alongside() -> u64 {
    PAGES_HASHED_ALONGSIDE.load(Ordering::Relaxed)
}

/// The helper thread and the one page it works on.
struct Helper {
    state: AtomicU8,
    /// How many bytes of the page the writer has finished: the helper may hash `[0, ready)`.
    ready: AtomicUsize,
    page: UnsafeCell<Page>,
    thread: std::thread::Thread,
    /// The process that started the thread (a forked child has no helper thread).
    process: u32,
    /// When the helper started: the origin of `BACKED_OFF_UNTIL`.
    started: Instant,
}

impl Helper {
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }
}

// SAFETY: `page` is only touched by the side that `state` hands it to (the writer while CLAIMED and
// after DONE, the helper while WORKING); every hand-over is a Release store read by an Acquire load.
unsafe impl Sync for Helper {}

/// The page being hashed: where its bytes are, how many, and the hash state before and after them.
struct Page {
    start: *const u8,
    len: usize,
    hash: Option<Sha512State>,
}

// SAFETY: the pointer is only read, and only while the writer that set it waits for the helper (see
// `Claim::hash_behind`).
unsafe impl Send for Page {}

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
        page: UnsafeCell::new(Page {
            start: std::ptr::null(),
            len: 0,
            hash: None,
        }),
        thread: thread.thread().clone(),
        process: std::process::id(),
        started: Instant::now(),
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
                    self.state.store(DONE, Ordering::Release);
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

    /// Hashes the page's bytes as the writer finishes them, leaving the state (or None if hashing
    /// failed or the writer abandoned the page) in `page.hash`.
    fn hash_page(&self) {
        // SAFETY: the state is WORKING (Acquire-loaded by `run`), so the writer has handed `page` over
        // and does not touch it until it sees DONE.
        let page = unsafe { &mut *self.page.get() };
        let Some(mut hash) = page.hash.take() else {
            return;
        };
        let mut hashed = 0;
        while hashed < page.len {
            let ready = self.ready.load(Ordering::Acquire);
            if ready == ABANDONED {
                return;
            }
            if ready <= hashed {
                std::hint::spin_loop();
                continue;
            }
            let ready = ready.min(page.len);
            // SAFETY: the writer's contract (`Claim::hash_behind`): `[start, start + len)` is readable
            // until the writer sees DONE, and `[0, ready)` was written before `ready` was stored
            // (Release, loaded above with Acquire) and is not written again.
            let bytes =
                unsafe { std::slice::from_raw_parts(page.start.add(hashed), ready - hashed) };
            if !hash.update(bytes) {
                return;
            }
            hashed = ready;
        }
        page.hash = Some(hash);
    }
}

/// The helper, claimed by one writer for one page; dropping an unused claim frees it.
pub(crate) struct Claim(&'static Helper);

impl Drop for Claim {
    fn drop(&mut self) {
        self.0.state.store(SPINNING, Ordering::Release);
    }
}

/// Claims the helper for a page, if it is on, running and free. A parked helper is asked to wake for
/// the pages after this one.
pub(crate) fn claim() -> Option<Claim> {
    if !ENABLED.load(Ordering::Relaxed) {
        return None;
    }
    let helper = helper()?;
    if helper.now() < BACKED_OFF_UNTIL.load(Ordering::Relaxed) {
        return None;
    }
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
    /// Runs `write(offset, len)` over `[0, written)` of the page in stretches of [`STRETCH`] bytes while
    /// the helper hashes, from `hash`, each stretch once it is written and then `[written, len)`, which
    /// must already hold its final bytes. Returns whether every `write` succeeded, and the hash state
    /// after the page's `len` bytes (None if a write or the hashing failed).
    ///
    /// # Safety
    /// `start` points at `len` bytes that stay readable until this returns; `write` is the only writer of
    /// `[0, written)` while this runs, writes exactly the stretch it is given, and nothing writes
    /// `[written, len)`.
    pub(crate) unsafe fn hash_behind(
        self,
        start: *const u8,
        len: usize,
        written: usize,
        hash: Sha512State,
        mut write: impl FnMut(usize, usize) -> bool,
    ) -> (bool, Option<Sha512State>) {
        let helper = self.0;
        // From here the claim is released below, once the helper is done, not when `self` drops.
        std::mem::forget(self);
        // SAFETY: the state is CLAIMED by this writer, so the helper does not touch `page`.
        unsafe {
            *helper.page.get() = Page {
                start,
                len,
                hash: Some(hash),
            };
        }
        helper.ready.store(0, Ordering::Relaxed);
        helper.state.store(WORKING, Ordering::Release);
        let mut done = 0;
        let mut ok = true;
        while done < written {
            let stretch = STRETCH.min(written - done);
            if !write(done, stretch) {
                ok = false;
                break;
            }
            done += stretch;
            let ready = if done == written { len } else { done };
            helper.ready.store(ready, Ordering::Release);
        }
        if written == 0 {
            helper.ready.store(len, Ordering::Release);
        }
        if !ok {
            helper.ready.store(ABANDONED, Ordering::Release);
        }
        let mut waited: Option<Instant> = None;
        let mut spins: u32 = 0;
        while helper.state.load(Ordering::Acquire) != DONE {
            std::hint::spin_loop();
            spins = spins.wrapping_add(1);
            if spins.is_multiple_of(256) {
                let since = *waited.get_or_insert_with(Instant::now);
                if since.elapsed() >= SLOW_WAIT {
                    let back_off = u64::try_from(BACK_OFF.as_nanos()).unwrap_or(u64::MAX);
                    BACKED_OFF_UNTIL
                        .store(helper.now().saturating_add(back_off), Ordering::Relaxed);
                }
            }
        }
        // SAFETY: DONE (Acquire-loaded above) hands `page` back to this writer.
        let hash = unsafe { (*helper.page.get()).hash.take() };
        // SAFETY: as above; the pointer is not kept past this call.
        unsafe { (*helper.page.get()).start = std::ptr::null() };
        helper.state.store(SPINNING, Ordering::Release);
        let hash = hash.filter(|_| ok);
        if hash.is_some() {
            PAGES_HASHED_ALONGSIDE.fetch_add(1, Ordering::Relaxed);
        }
        (ok, hash)
    }
}
