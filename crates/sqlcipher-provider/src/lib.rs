//! SQLCipher's page crypto with OpenSSL contexts keyed once per connection instead of once per page.
//!
//! SQLCipher encrypts every page it writes with AES-256-CBC under a fresh random IV and signs it with
//! HMAC-SHA512; it reads by checking the signature and decrypting. Its stock OpenSSL provider does each of
//! those from scratch for every page: it fetches OpenSSL's HMAC and cipher implementations, allocates their
//! contexts, expands the keys (the AES key schedule, HMAC's two padded key blocks) and takes a process-wide
//! lock for 80 bytes of randomness. For a 4 KiB page that setup is about a fifth of the crypto's cost.
//!
//! This provider does the same algorithms on the same bytes, so files stay standard SQLCipher 4 (a stock
//! SQLCipher opens them with the raw key, and this provider opens files a stock SQLCipher wrote), but each
//! connection keeps its keyed contexts: the AES contexts keep their key schedule and only take each page's
//! IV, HMAC starts from the hashed padded key blocks, and IVs come from a per-connection pool of OpenSSL
//! randomness refilled 4 KiB at a time. Everything else (key derivation, sizes, names of the cipher) is the
//! stock provider's.
//!
//! Two more steps take the signature off the writer's path, with the same bytes written: a page is
//! hashed on a second core while it is encrypted (`signing_alongside`), and a page bound for the
//! write-ahead log of a connection opened through [`VFS_NAME`] is signed after SQLCipher hands it on,
//! its frame held until the commit's end (`held_wal`).
//!
//! SQLCipher copies the registered provider into each codec when a connection is keyed, and resets the
//! registration to its stock provider when its last keyed connection closes: [`register`] must be called
//! while a keyed connection is open, and the caller keeps one open for as long as it wants this provider
//! used (a connection keyed with the stock provider is still correct, only slower).

use std::ffi::{c_char, c_int, c_void};
use std::ptr;
use std::sync::OnceLock;

use openssl_sys as ossl;
use zeroize::{Zeroize, Zeroizing};

// Make sure the SQLCipher amalgamation (and the OpenSSL it is built with) is linked into whatever uses this.
use libsqlite3_sys as _;

mod held_wal;
mod signing_alongside;

pub use held_wal::{
    VFS_NAME, VfsError, pages_signed_after_handing_on, register_vfs, signatures_unclaimed,
};
pub use signing_alongside::{
    pages_given_up, pages_signed_alongside, pages_signed_behind, sign_alongside,
};

const SQLITE_OK: c_int = 0;
const SQLITE_ERROR: c_int = 1;
/// SQLCipher's code for HMAC-SHA512, its default (and SQLCipher 4's) page signature.
const SQLCIPHER_HMAC_SHA512: c_int = 2;
const SHA512_BLOCK: usize = 128;
const SHA512_LEN: usize = 64;
const AES_256_KEY_LEN: usize = 32;
/// SQLCipher's IV per page, AES's block.
const AES_IV_LEN: usize = 16;
/// Randomness drawn from OpenSSL per refill of a connection's pool (SQLCipher asks 80 bytes per page).
const RANDOM_POOL: usize = 4096;
/// Keyed contexts kept per connection: a connection has one key, two while `PRAGMA rekey` rewrites the file.
const KEYED_KEPT: usize = 4;

/// SQLCipher's provider table (`sqlcipher_provider` in `sqlcipher.h`, SQLCipher 4.5), field for field.
#[repr(C)]
#[derive(Clone, Copy)]
struct ProviderTable {
    activate: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    deactivate: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_provider_name: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    add_random: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int>,
    random: Option<unsafe extern "C" fn(*mut c_void, *mut c_void, c_int) -> c_int>,
    hmac: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *mut u8,
            c_int,
            *mut u8,
            c_int,
            *mut u8,
            c_int,
            *mut u8,
        ) -> c_int,
    >,
    kdf: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *const u8,
            c_int,
            *mut u8,
            c_int,
            c_int,
            c_int,
            *mut u8,
        ) -> c_int,
    >,
    cipher: Option<
        unsafe extern "C" fn(
            *mut c_void,
            c_int,
            *mut u8,
            c_int,
            *mut u8,
            *mut u8,
            c_int,
            *mut u8,
        ) -> c_int,
    >,
    get_cipher: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
    get_key_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_iv_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_block_sz: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_hmac_sz: Option<unsafe extern "C" fn(*mut c_void, c_int) -> c_int>,
    ctx_init: Option<unsafe extern "C" fn(*mut *mut c_void) -> c_int>,
    ctx_free: Option<unsafe extern "C" fn(*mut *mut c_void) -> c_int>,
    fips_status: Option<unsafe extern "C" fn(*mut c_void) -> c_int>,
    get_provider_version: Option<unsafe extern "C" fn(*mut c_void) -> *const c_char>,
}

unsafe extern "C" {
    fn sqlcipher_register_provider(provider: *mut ProviderTable) -> c_int;
    fn sqlcipher_get_provider() -> *mut ProviderTable;
    fn sqlcipher_malloc(size: u64) -> *mut c_void;
}

/// The stock provider's table, copied when this one is registered: the calls this provider does not
/// replace, and the fallback for forms it does not handle (another HMAC, another key size).
static STOCK: OnceLock<ProviderTable> = OnceLock::new();

/// What `PRAGMA cipher_provider` reports for connections keyed after [`register`].
pub const PROVIDER_NAME: &str = "openssl-keyed-per-connection";
const PROVIDER_NAME_C: &std::ffi::CStr = c"openssl-keyed-per-connection";

/// Why [`register`] left SQLCipher's stock provider in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterError {
    /// No SQLCipher connection is keyed, so SQLCipher has no provider yet to build on.
    NotActive,
    /// The registered provider is not the OpenSSL one this crate builds on.
    UnexpectedProvider,
    /// SQLCipher could not allocate the provider table.
    OutOfMemory,
}

impl std::fmt::Display for RegisterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::NotActive => "no SQLCipher connection is keyed",
            Self::UnexpectedProvider => "SQLCipher's registered provider is not OpenSSL",
            Self::OutOfMemory => "SQLCipher could not allocate a provider table",
        })
    }
}

impl std::error::Error for RegisterError {}

/// Registers this provider with SQLCipher; connections keyed from now on use it. Call it while a keyed
/// connection is open (see the module doc). Calling it again is a no-op.
pub fn register() -> Result<(), RegisterError> {
    // SAFETY: sqlcipher_get_provider only reads SQLCipher's registered-provider pointer.
    let current = unsafe { sqlcipher_get_provider() };
    if current.is_null() {
        return Err(RegisterError::NotActive);
    }
    // SAFETY: a non-null registered provider is a live, fully initialised table that SQLCipher only frees
    // when a provider is registered in its place or its last keyed connection closes; the caller keeps a
    // keyed connection open, and concurrent registrations would at worst register twice.
    let table = unsafe { ptr::read(current) };
    match name_of(&table) {
        Some(name) if name == PROVIDER_NAME_C => return Ok(()),
        Some(name) if name == c"openssl" => {}
        _ => return Err(RegisterError::UnexpectedProvider),
    }
    let stock = *STOCK.get_or_init(|| table);
    let keyed = ProviderTable {
        get_provider_name: Some(provider_name),
        random: Some(pooled_random),
        hmac: Some(keyed_hmac),
        cipher: Some(keyed_cipher),
        ctx_init: Some(keyed_ctx_init),
        ctx_free: Some(keyed_ctx_free),
        ..stock
    };
    hand_over(keyed)
}

/// Puts SQLCipher's stock provider back for connections keyed from now on (the store benchmark measures
/// both). Like [`register`], call it while a keyed connection is open; a no-op if this one is not registered.
pub fn unregister() -> Result<(), RegisterError> {
    let Some(stock) = STOCK.get() else {
        return Ok(());
    };
    // SAFETY: as in `register`.
    let current = unsafe { sqlcipher_get_provider() };
    if current.is_null() {
        return Err(RegisterError::NotActive);
    }
    // SAFETY: as in `register`: a live table, kept alive by the caller's keyed connection.
    if name_of(&unsafe { ptr::read(current) }) != Some(PROVIDER_NAME_C) {
        return Ok(());
    }
    hand_over(*stock)
}

/// The name a provider table reports (`PRAGMA cipher_provider`).
fn name_of(table: &ProviderTable) -> Option<&'static std::ffi::CStr> {
    let name = table.get_provider_name?;
    // SAFETY: both SQLCipher's OpenSSL provider and this one return a static C string and ignore the
    // context argument.
    let text = unsafe { name(ptr::null_mut()) };
    // SAFETY: non-null, static and NUL-terminated, as above.
    (!text.is_null()).then(|| unsafe { std::ffi::CStr::from_ptr(text) })
}

/// Registers `table` as SQLCipher's provider; SQLCipher frees the table it replaces.
fn hand_over(table: ProviderTable) -> Result<(), RegisterError> {
    // SAFETY: SQLCipher frees a replaced provider table with sqlcipher_free, so it must come from
    // sqlcipher_malloc; the table is plain data (function pointers) and is fully written before it is
    // handed over, after which only SQLCipher touches it. Registration takes SQLCipher's provider mutex,
    // the one a connection takes to copy the table when it is keyed.
    unsafe {
        let slot =
            sqlcipher_malloc(std::mem::size_of::<ProviderTable>() as u64) as *mut ProviderTable;
        if slot.is_null() {
            return Err(RegisterError::OutOfMemory);
        }
        ptr::write(slot, table);
        sqlcipher_register_provider(slot);
    }
    Ok(())
}

/// One connection's keyed contexts and randomness (SQLCipher's per-codec `provider_ctx`).
#[derive(Default)]
struct Keyed {
    signers: Vec<HmacSha512>,
    ciphers: Vec<AesCbc>,
    random: RandomPool,
    /// The signer of this connection's last written page: SQLCipher signs every page it writes with the
    /// same HMAC key, so the next page's inner hash can start (on the helper) before it is asked for.
    page_signer: Option<std::sync::Arc<HmacSha512>>,
    /// Where the last encrypted page's output is, so its signing call can be recognised.
    last_encrypted: Option<(usize, usize)>,
    /// The inner hash (from `page_signer`'s key) of the page at `last_encrypted`, computed alongside
    /// its encryption.
    hashed_alongside: Option<Sha512State>,
}

impl Keyed {
    fn signer(&mut self, key: &[u8]) -> Option<&HmacSha512> {
        let at = kept(
            &mut self.signers,
            |s| s.key.as_slice() == key,
            || HmacSha512::new(key),
        )?;
        self.signers.get(at)
    }

    fn cipher(&mut self, key: &[u8], encrypt: bool) -> Option<&mut AesCbc> {
        let at = kept(
            &mut self.ciphers,
            |c| c.encrypt == encrypt && c.key.as_slice() == key,
            || AesCbc::new(key, encrypt),
        )?;
        self.ciphers.get_mut(at)
    }

    /// Encrypts or decrypts one page (SQLCipher's cipher call). A page being written is hashed for its
    /// signature on the helper thread while it is encrypted, when this connection has signed a written
    /// page before (so the key is known) and the helper is free; else it is only encrypted here.
    ///
    /// # Safety
    /// As SQLCipher's cipher call: `iv` points at 16 readable bytes, `input` and `output` at `len` bytes
    /// each, and SQLCipher does not change the output or the IV before it signs them.
    unsafe fn crypt(
        &mut self,
        key: &[u8],
        encrypt: bool,
        iv: *const u8,
        input: *const u8,
        len: c_int,
        output: *mut u8,
    ) -> Option<bool> {
        self.hashed_alongside = None;
        self.last_encrypted = None;
        // SQLCipher puts a written page's IV right after its ciphertext and signs the two together.
        let page = usize::try_from(len)
            .ok()
            .filter(|&n| encrypt && (output as usize).checked_add(n) == Some(iv as usize))
            .and_then(|n| Some((n, n.checked_add(AES_IV_LEN)?)));
        self.last_encrypted = page.map(|(_, signed)| (output as usize, signed));
        let inner = page.and_then(|_| Some(self.page_signer.as_ref()?.inner.clone()));
        let cipher = self.cipher(key, encrypt)?;
        if page.is_some() {
            held_wal::encrypted_into(output as usize);
            if held_wal::may_sign_later(output as usize) {
                // Signed after it is handed on (`held_wal`): the helper hashes it then, not alongside.
                // SAFETY: the caller's buffers, passed on.
                return Some(unsafe { cipher.run(iv, input, len, output) });
            }
        }
        let (Some((written, signed)), Some(inner)) = (page, inner) else {
            // SAFETY: the caller's buffers, passed on.
            return Some(unsafe { cipher.run(iv, input, len, output) });
        };
        let Some(helper) = signing_alongside::claim(signed) else {
            // SAFETY: as above.
            return Some(unsafe { cipher.run(iv, input, len, output) });
        };
        // SAFETY: as above.
        if !unsafe { cipher.start(iv) } {
            return Some(false);
        }
        // SAFETY: `output` holds the page's `written` bytes of ciphertext and the IV right after them
        // (checked above), readable for this call; only the stretches below write the ciphertext, each
        // exactly its own bytes of `input` and `output`, and nothing writes the IV.
        let (ok, hashed) = unsafe {
            helper.hash_behind(output, signed, written, inner, |at, stretch| {
                cipher.stretch(input.add(at), stretch as c_int, output.add(at))
            })
        };
        self.hashed_alongside = hashed;
        Some(ok)
    }

    /// Signs `first` then `second` under `key` (SQLCipher's HMAC call). The signing of the page this
    /// connection just encrypted finishes the inner hash computed alongside, and makes `key` the page
    /// signer for the pages after it.
    fn sign(
        &mut self,
        key: &[u8],
        first: &[u8],
        second: &[u8],
        out: &mut [u8; SHA512_LEN],
    ) -> Option<bool> {
        let hashed = self.hashed_alongside.take();
        let signs_written_page =
            self.last_encrypted.take() == Some((first.as_ptr() as usize, first.len()));
        let known_signer = self
            .page_signer
            .as_ref()
            .filter(|signer| signer.key.as_slice() == key);
        if let (true, None, Some(signer)) = (signs_written_page, &hashed, known_signer)
            && held_wal::may_sign_later(out.as_ptr() as usize)
            && held_wal::leave_unsigned(
                out.as_mut_ptr(),
                first,
                second,
                std::sync::Arc::clone(signer),
            )
        {
            return Some(true);
        }
        if let (true, Some(hashed), Some(signer)) = (signs_written_page, hashed, known_signer) {
            return Some(signer.finish(hashed, second, out));
        }
        let learn = signs_written_page && known_signer.is_none();
        let signer = self.signer(key)?;
        let ok = signer.sign(first, second, out);
        if learn {
            let signer = signer.clone();
            self.page_signer = Some(std::sync::Arc::new(signer));
        }
        Some(ok)
    }
}

/// The position of the kept context that `matches`, else of a new one from `make` (dropping the oldest
/// once `KEYED_KEPT` are kept). Keys are compared plainly: both sides are this process's own keys.
fn kept<T>(
    contexts: &mut Vec<T>,
    matches: impl Fn(&T) -> bool,
    make: impl FnOnce() -> Option<T>,
) -> Option<usize> {
    if let Some(at) = contexts.iter().position(matches) {
        return Some(at);
    }
    let made = make()?;
    if contexts.len() == KEYED_KEPT {
        contexts.remove(0);
    }
    contexts.push(made);
    Some(contexts.len() - 1)
}

/// A SHA-512 state; zeroed when dropped, since after hashing a padded key block it stands for the key.
struct Sha512State(ossl::SHA512_CTX);

impl Sha512State {
    fn new() -> Option<Self> {
        // SAFETY: SHA512_CTX is plain integers, so all-zero is a valid value; SHA512_Init then sets it up.
        let mut state = Self(unsafe { std::mem::MaybeUninit::zeroed().assume_init() });
        // SAFETY: the pointer is to an owned, writable SHA512_CTX.
        (unsafe { ossl::SHA512_Init(&mut state.0) } == 1).then_some(state)
    }

    fn update(&mut self, bytes: &[u8]) -> bool {
        // SAFETY: the pointer and length describe one borrowed slice.
        unsafe { ossl::SHA512_Update(&mut self.0, bytes.as_ptr().cast(), bytes.len()) == 1 }
    }

    fn finish(mut self, out: &mut [u8; SHA512_LEN]) -> bool {
        // SAFETY: `out` holds SHA512_DIGEST_LENGTH bytes.
        unsafe { ossl::SHA512_Final(out.as_mut_ptr(), &mut self.0) == 1 }
    }
}

impl Clone for Sha512State {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl Drop for Sha512State {
    fn drop(&mut self) {
        // SAFETY: the bytes are those of an owned SHA512_CTX (plain integers), overwritten in place.
        let bytes = unsafe {
            std::slice::from_raw_parts_mut(
                (&mut self.0 as *mut ossl::SHA512_CTX).cast::<u8>(),
                std::mem::size_of::<ossl::SHA512_CTX>(),
            )
        };
        bytes.zeroize();
    }
}

/// HMAC-SHA512 (RFC 2104) under one key, its inner and outer padded key blocks hashed once.
struct HmacSha512 {
    key: Zeroizing<Vec<u8>>,
    inner: Sha512State,
    outer: Sha512State,
}

impl HmacSha512 {
    fn new(key: &[u8]) -> Option<Self> {
        if key.len() > SHA512_BLOCK {
            // Longer keys are hashed first; SQLCipher's are 32 bytes, so that form goes to the stock call.
            return None;
        }
        let mut inner_pad = Zeroizing::new([0x36u8; SHA512_BLOCK]);
        let mut outer_pad = Zeroizing::new([0x5cu8; SHA512_BLOCK]);
        for (i, byte) in key.iter().enumerate() {
            inner_pad[i] ^= byte;
            outer_pad[i] ^= byte;
        }
        let mut inner = Sha512State::new()?;
        let mut outer = Sha512State::new()?;
        (inner.update(inner_pad.as_slice()) && outer.update(outer_pad.as_slice())).then(|| Self {
            key: Zeroizing::new(key.to_vec()),
            inner,
            outer,
        })
    }

    fn sign(&self, first: &[u8], second: &[u8], out: &mut [u8; SHA512_LEN]) -> bool {
        let mut inner = self.inner.clone();
        inner.update(first) && self.finish(inner, second, out)
    }

    /// Finishes a signature whose inner hash has already taken the first part of the message.
    fn finish(&self, mut inner: Sha512State, second: &[u8], out: &mut [u8; SHA512_LEN]) -> bool {
        let mut inner_hash = Zeroizing::new([0u8; SHA512_LEN]);
        if !(inner.update(second) && inner.finish(&mut inner_hash)) {
            return false;
        }
        let mut outer = self.outer.clone();
        outer.update(inner_hash.as_slice()) && outer.finish(out)
    }
}

impl Clone for HmacSha512 {
    fn clone(&self) -> Self {
        Self {
            key: self.key.clone(),
            inner: self.inner.clone(),
            outer: self.outer.clone(),
        }
    }
}

/// An AES-256-CBC context holding one key's schedule, for one direction; each page only sets its IV.
struct AesCbc {
    key: Zeroizing<Vec<u8>>,
    encrypt: bool,
    context: *mut ossl::EVP_CIPHER_CTX,
}

impl AesCbc {
    fn new(key: &[u8], encrypt: bool) -> Option<Self> {
        if key.len() != AES_256_KEY_LEN {
            return None;
        }
        // SAFETY: a fresh context is owned by the value built below (freed in Drop, also on failure);
        // the key pointer covers the 32 bytes AES-256 reads; no IV yet (each page sets its own).
        unsafe {
            let context = ossl::EVP_CIPHER_CTX_new();
            if context.is_null() {
                return None;
            }
            let cipher = Self {
                key: Zeroizing::new(key.to_vec()),
                encrypt,
                context,
            };
            let keyed = ossl::EVP_CipherInit_ex(
                context,
                ossl::EVP_aes_256_cbc(),
                ptr::null_mut(),
                key.as_ptr(),
                ptr::null(),
                c_int::from(encrypt),
            ) == 1
                && ossl::EVP_CIPHER_CTX_set_padding(context, 0) == 1;
            keyed.then_some(cipher)
        }
    }

    /// Encrypts or decrypts `len` bytes (a whole number of AES blocks) from `input` into `output`.
    ///
    /// # Safety
    /// `iv` points at 16 readable bytes, `input` and `output` at `len` bytes each (SQLCipher's page buffers).
    unsafe fn run(&mut self, iv: *const u8, input: *const u8, len: c_int, output: *mut u8) -> bool {
        // SAFETY: the caller's buffers, passed on.
        unsafe { self.start(iv) && self.stretch(input, len, output) }
    }

    /// Starts a page: sets its IV, keeping the key schedule.
    ///
    /// # Safety
    /// `iv` points at 16 readable bytes.
    unsafe fn start(&mut self, iv: *const u8) -> bool {
        // SAFETY: the context is live and keyed; a null cipher and key keep the key schedule and set only
        // the IV (mode -1: this context's direction); the caller vouches for the IV.
        unsafe {
            ossl::EVP_CipherInit_ex(
                self.context,
                ptr::null(),
                ptr::null_mut(),
                ptr::null(),
                iv,
                -1,
            ) == 1
        }
    }

    /// Encrypts or decrypts the page's next `len` bytes (whole AES blocks), chaining from the last ones.
    ///
    /// # Safety
    /// `input` and `output` point at `len` bytes each.
    unsafe fn stretch(&mut self, input: *const u8, len: c_int, output: *mut u8) -> bool {
        let mut written: c_int = 0;
        // SAFETY: the context is live, keyed and started; the caller vouches for the buffers. Without
        // padding, whole blocks come out of the update itself (no finishing call holds any back), which
        // `written` confirms; the context carries the CBC chain from one update to the next.
        unsafe {
            ossl::EVP_CipherUpdate(self.context, output, &mut written, input, len) == 1
                && written == len
        }
    }
}

impl Drop for AesCbc {
    fn drop(&mut self) {
        // SAFETY: the context was allocated by EVP_CIPHER_CTX_new and is freed once; OpenSSL cleanses the
        // key schedule it holds.
        unsafe { ossl::EVP_CIPHER_CTX_free(self.context) };
    }
}

/// OpenSSL randomness drawn 4 KiB at a time and handed out in order, each byte once. Per connection, so
/// never shared across `fork()` (SQLite forbids using a connection there).
struct RandomPool {
    bytes: Zeroizing<Vec<u8>>,
    used: usize,
}

impl Default for RandomPool {
    fn default() -> Self {
        Self {
            bytes: Zeroizing::new(vec![0; RANDOM_POOL]),
            used: RANDOM_POOL,
        }
    }
}

impl RandomPool {
    fn fill(&mut self, out: &mut [u8]) -> bool {
        if out.len() > RANDOM_POOL {
            return openssl_random(out);
        }
        if RANDOM_POOL - self.used < out.len() {
            if !openssl_random(self.bytes.as_mut_slice()) {
                return false;
            }
            self.used = 0;
        }
        let Some(drawn) = self.bytes.get_mut(self.used..self.used + out.len()) else {
            return false;
        };
        out.copy_from_slice(drawn);
        drawn.zeroize();
        self.used += out.len();
        true
    }
}

fn openssl_random(out: &mut [u8]) -> bool {
    let Ok(len) = c_int::try_from(out.len()) else {
        return false;
    };
    // SAFETY: the pointer and length describe one borrowed, writable slice; RAND_bytes is thread-safe.
    unsafe { ossl::RAND_bytes(out.as_mut_ptr(), len) == 1 }
}

fn status(ok: bool) -> c_int {
    if ok { SQLITE_OK } else { SQLITE_ERROR }
}

/// Borrows SQLCipher's buffer as a slice; None for a negative length.
///
/// # Safety
/// `data` points at `len` readable bytes that stay valid and unchanged for the returned lifetime.
unsafe fn input<'a>(data: *const u8, len: c_int) -> Option<&'a [u8]> {
    let len = usize::try_from(len).ok()?;
    if len == 0 {
        return Some(&[]);
    }
    if data.is_null() {
        return None;
    }
    // SAFETY: the caller vouches for `len` readable bytes at a non-null `data`.
    Some(unsafe { std::slice::from_raw_parts(data, len) })
}

/// # Safety
/// `ctx` is null or a pointer this provider's `keyed_ctx_init` made and `keyed_ctx_free` has not freed.
unsafe fn keyed<'a>(ctx: *mut c_void) -> Option<&'a mut Keyed> {
    // SAFETY: SQLCipher hands each codec's provider context to one connection's calls at a time.
    unsafe { ctx.cast::<Keyed>().as_mut() }
}

unsafe extern "C" fn provider_name(_ctx: *mut c_void) -> *const c_char {
    PROVIDER_NAME_C.as_ptr()
}

unsafe extern "C" fn keyed_ctx_init(ctx: *mut *mut c_void) -> c_int {
    if ctx.is_null() {
        return SQLITE_ERROR;
    }
    // The stock provider's context setup only counts activations; keep its count balanced.
    if let Some(init) = STOCK.get().and_then(|s| s.ctx_init) {
        // SAFETY: the stock call takes the same argument SQLCipher gave this one.
        let rc = unsafe { init(ctx) };
        if rc != SQLITE_OK {
            return rc;
        }
    }
    // SAFETY: `ctx` is SQLCipher's slot for this codec's provider context; it is freed by keyed_ctx_free.
    unsafe { *ctx = Box::into_raw(Box::<Keyed>::default()).cast() };
    SQLITE_OK
}

unsafe extern "C" fn keyed_ctx_free(ctx: *mut *mut c_void) -> c_int {
    if ctx.is_null() {
        return SQLITE_OK;
    }
    // SAFETY: the slot holds null or the Box this provider's keyed_ctx_init put there; it is taken once.
    unsafe {
        let context = std::mem::replace(&mut *ctx, ptr::null_mut());
        if !context.is_null() {
            drop(Box::from_raw(context.cast::<Keyed>()));
        }
    }
    match STOCK.get().and_then(|s| s.ctx_free) {
        // SAFETY: the stock call ignores its argument beyond counting; the slot is now null.
        Some(free) => unsafe { free(ctx) },
        None => SQLITE_OK,
    }
}

unsafe extern "C" fn pooled_random(ctx: *mut c_void, buffer: *mut c_void, length: c_int) -> c_int {
    let (Ok(len), false) = (usize::try_from(length), buffer.is_null()) else {
        return SQLITE_ERROR;
    };
    // SAFETY: SQLCipher asks for `length` bytes at `buffer` (a page's reserve, or a new file's salt).
    let out = unsafe { std::slice::from_raw_parts_mut(buffer.cast::<u8>(), len) };
    // SAFETY: SQLCipher passes the context this provider made for the codec.
    match unsafe { keyed(ctx) } {
        Some(keyed) => status(keyed.random.fill(out)),
        None => status(openssl_random(out)),
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn keyed_hmac(
    ctx: *mut c_void,
    algorithm: c_int,
    key: *mut u8,
    key_len: c_int,
    first: *mut u8,
    first_len: c_int,
    second: *mut u8,
    second_len: c_int,
    out: *mut u8,
) -> c_int {
    // SAFETY: SQLCipher's page signing passes its key, the page (and IV) and the page number, each with
    // its length, and a 64-byte output for HMAC-SHA512; the context is the codec's.
    let signed = unsafe {
        match (
            algorithm == SQLCIPHER_HMAC_SHA512 && !out.is_null() && !first.is_null(),
            keyed(ctx),
            input(key, key_len),
            input(first, first_len),
            input(second, second_len),
        ) {
            (true, Some(keyed), Some(key), Some(first), Some(second)) => {
                keyed.sign(key, first, second, &mut *out.cast::<[u8; SHA512_LEN]>())
            }
            _ => None,
        }
    };
    match signed {
        Some(ok) => status(ok),
        None => match STOCK.get().and_then(|s| s.hmac) {
            // SAFETY: the stock call takes exactly the arguments SQLCipher gave this one.
            Some(stock) => unsafe {
                stock(
                    ctx, algorithm, key, key_len, first, first_len, second, second_len, out,
                )
            },
            None => SQLITE_ERROR,
        },
    }
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn keyed_cipher(
    ctx: *mut c_void,
    mode: c_int,
    key: *mut u8,
    key_len: c_int,
    iv: *mut u8,
    data: *mut u8,
    len: c_int,
    out: *mut u8,
) -> c_int {
    // SAFETY: SQLCipher passes its 32-byte key, the page's 16-byte IV and `len`-byte input and output
    // buffers; the context is the codec's.
    let ran = unsafe {
        match (keyed(ctx), input(key, key_len)) {
            (Some(keyed), Some(key)) if !iv.is_null() && !data.is_null() && !out.is_null() => {
                keyed.crypt(key, mode == 1, iv, data, len, out)
            }
            _ => None,
        }
    };
    match ran {
        Some(ok) => status(ok),
        None => match STOCK.get().and_then(|s| s.cipher) {
            // SAFETY: the stock call takes exactly the arguments SQLCipher gave this one.
            Some(stock) => unsafe { stock(ctx, mode, key, key_len, iv, data, len, out) },
            None => SQLITE_ERROR,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// RFC 4231 test case 2 (a key shorter than the block), with the message split in two as SQLCipher
    /// passes page and page number.
    #[test]
    fn hmac_sha512_matches_rfc_4231() {
        let signer = HmacSha512::new(b"Jefe").expect("keyed");
        let mut out = [0u8; SHA512_LEN];
        assert!(signer.sign(b"what do ya want ", b"for nothing?", &mut out));
        assert_eq!(
            hex::encode(out),
            "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"
        );
        // Signing again from the same keyed states gives the same tag (the states are copied, not used up).
        let mut again = [0u8; SHA512_LEN];
        assert!(signer.sign(b"what do ya want for nothing?", b"", &mut again));
        assert_eq!(out, again);
    }

    /// NIST SP 800-38A F.2.5/F.2.6 (AES-256-CBC), two pages in a row through one keyed context.
    #[test]
    fn aes_256_cbc_matches_sp_800_38a_in_both_directions_page_after_page() {
        let key = hex::decode("603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4")
            .expect("hex");
        let iv = hex::decode("000102030405060708090a0b0c0d0e0f").expect("hex");
        let plain = hex::decode("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51")
            .expect("hex");
        let expected = "f58c4c04d6e5f1ba779eabfb5f7bfbd69cfc4e967edb808d679f777bc6702c7d";
        let mut encrypt = AesCbc::new(&key, true).expect("keyed");
        let mut decrypt = AesCbc::new(&key, false).expect("keyed");
        for _ in 0..2 {
            let mut sealed = [0u8; 32];
            // SAFETY: 16-byte IV, 32-byte input and output.
            assert!(unsafe { encrypt.run(iv.as_ptr(), plain.as_ptr(), 32, sealed.as_mut_ptr()) });
            assert_eq!(hex::encode(sealed), expected);
            let mut opened = [0u8; 32];
            // SAFETY: as above.
            assert!(unsafe { decrypt.run(iv.as_ptr(), sealed.as_ptr(), 32, opened.as_mut_ptr()) });
            assert_eq!(opened.as_slice(), plain.as_slice());
        }
    }

    /// SQLCipher's cipher call for a page being written: `page` has room for the ciphertext of `plain`
    /// and holds the IV right after it.
    fn encrypt_page(keyed: &mut Keyed, aes: &[u8], plain: &[u8], page: &mut [u8]) -> Option<bool> {
        let len = plain.len();
        assert!(page.len() >= len + AES_IV_LEN);
        let out = page.as_mut_ptr();
        // SAFETY: `out` has `len` writable bytes and the IV's 16 right after them (asserted above); the
        // input is `plain`'s `len` bytes.
        unsafe { keyed.crypt(aes, true, out.add(len), plain.as_ptr(), len as c_int, out) }
    }

    /// One SQLCipher page write as SQLCipher makes it: random IV after the ciphertext, encrypt, sign.
    fn write_page(
        keyed: &mut Keyed,
        aes: &[u8],
        mac: &[u8],
        plain: &[u8],
        page: &mut [u8],
    ) -> [u8; 64] {
        let len = plain.len();
        assert!(keyed.random.fill(&mut page[len..len + AES_IV_LEN]));
        assert_eq!(encrypt_page(keyed, aes, plain, page), Some(true));
        let mut tag = [0u8; SHA512_LEN];
        assert_eq!(
            keyed.sign(
                mac,
                &page[..len + AES_IV_LEN],
                &7u32.to_le_bytes(),
                &mut tag
            ),
            Some(true)
        );
        tag
    }

    /// The same page encrypted and signed one step after the other, from fresh contexts.
    fn expected_tag(aes: &[u8], mac: &[u8], plain: &[u8], page: &[u8]) -> [u8; 64] {
        let len = plain.len();
        let mut sealed = vec![0u8; len];
        let mut cipher = AesCbc::new(aes, true).expect("keyed");
        // SAFETY: 16-byte IV, `len`-byte input and output.
        assert!(unsafe {
            cipher.run(
                page[len..].as_ptr(),
                plain.as_ptr(),
                len as c_int,
                sealed.as_mut_ptr(),
            )
        });
        assert_eq!(sealed.as_slice(), &page[..len], "ciphertext differs");
        let mut tag = [0u8; SHA512_LEN];
        let signer = HmacSha512::new(mac).expect("keyed");
        assert!(signer.sign(&page[..len + AES_IV_LEN], &7u32.to_le_bytes(), &mut tag));
        tag
    }

    /// The tests that count the helper's pages, one at a time (the helper and its counters are the
    /// process's).
    static HELPER_COUNTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

    /// How long a test waits for the helper to do what it waits for (take a page, or stall on one)
    /// before it fails: on an idle machine it happens within a few pages.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Pages whose signature was hashed on the helper while they were encrypted carry the same
    /// ciphertext and tag as pages done one step after the other; a signing call for other bytes or
    /// under another key right after an encryption is not answered from that page's hash.
    #[test]
    fn pages_hashed_alongside_their_encryption_sign_as_if_hashed_after_it() {
        let _counts = HELPER_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let (aes, mac, other_mac) = ([0x2bu8; 32], [0x7eu8; 32], [0x15u8; 32]);
        let mut keyed = Keyed::default();
        // SQLCipher's page: 4,016 bytes of ciphertext, the IV, the tag and random filler.
        let len = 4016;
        let before = pages_signed_alongside();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let started = std::time::Instant::now();
        // At least 2,000 pages, and on until one was hashed on the helper: on a busy machine the helper
        // may be off its core, and then pages go one step after the other.
        let waiting =
            || cores >= 2 && pages_signed_alongside() == before && started.elapsed() < PATIENCE;
        let mut round = 0u32;
        while round < 2_000 || waiting() {
            let plain: Vec<u8> = (0..len).map(|i| (i as u32 * 31 + round) as u8).collect();
            let mut page = vec![0u8; 4096];
            let tag = write_page(&mut keyed, &aes, &mac, &plain, &mut page);
            assert_eq!(
                tag,
                expected_tag(&aes, &mac, &plain, &page),
                "round {round}"
            );
            if round % 500 == 499 {
                // The helper parks when idle; pages then go one step after the other until it is up.
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            round += 1;
        }
        if cores >= 2 {
            assert!(
                pages_signed_alongside() > before,
                "no page was hashed on the helper"
            );
        }
        // Right after an encryption: a signing call for another buffer, or under another key.
        for _ in 0..50 {
            let plain = vec![9u8; len];
            let mut page = vec![0u8; 4096];
            assert!(keyed.random.fill(&mut page[len..len + AES_IV_LEN]));
            assert_eq!(
                encrypt_page(&mut keyed, &aes, &plain, &mut page),
                Some(true)
            );
            let copy = page.clone();
            let mut tag = [0u8; SHA512_LEN];
            assert_eq!(
                keyed.sign(&mac, &copy[..len + 8], &[], &mut tag),
                Some(true)
            );
            let mut expected = [0u8; SHA512_LEN];
            assert!(HmacSha512::new(&mac).expect("keyed").sign(
                &copy[..len + 8],
                &[],
                &mut expected
            ));
            assert_eq!(tag, expected, "another buffer");
            assert_eq!(
                encrypt_page(&mut keyed, &aes, &plain, &mut page),
                Some(true)
            );
            assert_eq!(
                keyed.sign(
                    &other_mac,
                    &page[..len + AES_IV_LEN],
                    &[1, 0, 0, 0],
                    &mut tag
                ),
                Some(true)
            );
            assert!(HmacSha512::new(&other_mac).expect("keyed").sign(
                &page[..len + AES_IV_LEN],
                &[1, 0, 0, 0],
                &mut expected
            ));
            assert_eq!(tag, expected, "another key");
        }
    }

    /// A helper off its core (here: made to sleep before it hashes) does not hold its writer up: the
    /// writer gives the page up and signs it itself, with the same tag, and the helper takes pages
    /// again once it runs.
    #[test]
    fn a_writer_signs_its_page_itself_when_the_helper_is_off_its_core() {
        let _counts = HELPER_COUNTS.lock().unwrap_or_else(|e| e.into_inner());
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let (aes, mac) = ([0x41u8; 32], [0x5au8; 32]);
        let mut keyed = Keyed::default();
        // A length no other test writes: only these pages stall the helper.
        let len = 4000;
        let write_checked = |keyed: &mut Keyed, round: usize| {
            let plain: Vec<u8> = (0..len).map(|i| (i * 7 + round) as u8).collect();
            let mut page = vec![0u8; 4096];
            let tag = write_page(keyed, &aes, &mac, &plain, &mut page);
            assert_eq!(
                tag,
                expected_tag(&aes, &mac, &plain, &page),
                "round {round}"
            );
        };
        signing_alongside::STALL_PAGES_OF_LEN.store(len + AES_IV_LEN, Ordering::Relaxed);
        signing_alongside::STALL_MICROS.store(3_000, Ordering::Relaxed);
        let given_up = pages_given_up();
        let mut round = 0;
        let started = std::time::Instant::now();
        // The first page wakes a parked helper; the next ones find it awake, then stalled. On a busy
        // machine that can take many pages, hence a time limit rather than a count.
        while pages_given_up() == given_up && started.elapsed() < PATIENCE {
            write_checked(&mut keyed, round);
            round += 1;
            if round % 50 == 0 {
                std::thread::sleep(std::time::Duration::from_millis(4));
            }
        }
        signing_alongside::STALL_MICROS.store(0, Ordering::Relaxed);
        let alongside = pages_signed_alongside();
        let started = std::time::Instant::now();
        while pages_signed_alongside() == alongside && started.elapsed() < PATIENCE {
            write_checked(&mut keyed, round);
            round += 1;
        }
        if cores >= 2 {
            assert!(pages_given_up() > given_up, "no page was given up");
            assert!(
                pages_signed_alongside() > alongside,
                "the helper took no page after it was back"
            );
        }
    }

    #[test]
    fn the_random_pool_never_hands_out_the_same_bytes_twice_and_refills() {
        let mut pool = RandomPool::default();
        let mut seen = std::collections::HashSet::new();
        // 200 draws of 80 bytes is about four refills of the 4 KiB pool.
        for _ in 0..200 {
            let mut iv = [0u8; 80];
            assert!(pool.fill(&mut iv));
            assert!(seen.insert(iv), "a draw repeated");
        }
        let mut big = vec![0u8; RANDOM_POOL + 1];
        assert!(pool.fill(&mut big));
        assert!(big.iter().any(|&b| b != 0));
    }

    /// A page's signature queued for the helper is the one signed in place, whoever makes it (the
    /// helper, or the flush when the helper has not taken it), also for a signature refilled for
    /// another page.
    #[test]
    fn queued_signatures_equal_signatures_made_in_place() {
        use signing_alongside::{QueuedSignature, Second};
        let signer = std::sync::Arc::new(HmacSha512::new(&[0x2b; 32]).expect("key"));
        let page = |n: u8| -> Vec<u8> { (0..4096).map(|i| (i as u8).wrapping_mul(n)).collect() };
        let in_place = |page: &[u8], number: &[u8]| {
            let mut out = [0; SHA512_LEN];
            assert!(signer.sign(&page[..4016], number, &mut out));
            out
        };
        let mut queued = Vec::new();
        for n in 1..=64u8 {
            let bytes = page(n);
            let number = [n, 0, 0, 0];
            let signature = QueuedSignature::new(
                bytes.clone().into(),
                0..4016,
                Second::new(&number).expect("page number"),
                std::sync::Arc::clone(&signer),
            )
            .expect("fits");
            // Half go to the helper; the others only the flush can sign.
            if n % 2 == 0 {
                signing_alongside::queue(std::sync::Arc::clone(&signature));
            }
            queued.push((signature, in_place(&bytes, &number)));
        }
        for (signature, expected) in &queued {
            assert_eq!(signature.signature(), Some(*expected));
        }
        let (mut reused, _) = queued.swap_remove(0);
        let bytes = page(99);
        // Refilled only once the queue has let go of it, as a connection's held frames reuse them.
        let started = std::time::Instant::now();
        while !QueuedSignature::refill(
            &mut reused,
            &bytes,
            0..4016,
            Second::new(&[99, 0, 0, 0]).expect("page number"),
            &signer,
        ) {
            assert!(
                started.elapsed() < std::time::Duration::from_secs(30),
                "still shared"
            );
            std::thread::yield_now();
        }
        signing_alongside::queue(std::sync::Arc::clone(&reused));
        assert_eq!(reused.signature(), Some(in_place(&bytes, &[99, 0, 0, 0])));
        assert!(Second::new(&[0; 17]).is_none(), "longer than a page number");
    }
}
