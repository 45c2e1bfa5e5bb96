//! Raw shared futex calls.

use std::time::Duration;

use nix::errno::Errno;

use super::atomic::AtomicU32;

/// Outcome of a futex wait.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wait {
    /// Woken, or the word no longer held `expected`, or a signal: the caller re-checks.
    Retry,
    /// The timeout elapsed.
    TimedOut,
}

/// Sleeps while `*word == expected`, at most `timeout`.
pub(crate) fn wait(word: &AtomicU32, expected: u32, timeout: Duration) -> Result<Wait, Errno> {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: timeout.subsec_nanos() as libc::c_long,
    };
    // SAFETY: FUTEX_WAIT reads the 4-byte aligned word behind a live `&AtomicU32` (valid for
    // the whole call) and a valid timespec on our stack; it writes nothing.
    let r = unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        )
    };
    if r == 0 {
        return Ok(Wait::Retry);
    }
    match Errno::last() {
        Errno::EAGAIN | Errno::EINTR => Ok(Wait::Retry),
        Errno::ETIMEDOUT => Ok(Wait::TimedOut),
        e => Err(e),
    }
}

/// Wakes up to `n` waiters on `word`.
pub(crate) fn wake(word: &AtomicU32, n: u32) {
    // SAFETY: FUTEX_WAKE only uses the address of a live, aligned `&AtomicU32` as a key.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE,
            n.min(i32::MAX as u32),
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
