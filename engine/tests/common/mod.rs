//! What the test binaries share: the runner and the leak check of the `harness = false`
//! ones, a reproducible generator, and image encoders.
//!
//! The engine forks its workers and refuses to in a multi-threaded process, so these binaries
//! do not use libtest's threaded runner. Each `main` lists its tests once, in [`tests!`], which
//! runs them through `libtest-mimic` with one test thread: in order, one at a time, on the main
//! thread. Filtering by name, `--list` and libtest's closing `test result: ...` line (what CI
//! reads) work as under libtest. Each binary denies `dead_code`, so a test function left out of
//! the list does not compile.

#![allow(dead_code)] // each binary uses part of it

use std::path::Path;

/// A test's outcome: `Err` carries the failure message.
pub(crate) type TestResult = Result<(), String>;

/// Runs the named test functions (each `fn() -> TestResult`) in the order given, then the leak
/// check, and exits: `tests![first_test, second_test]`. Use it once, in `main`.
#[allow(unused_macros)] // `cli` runs under libtest
macro_rules! tests {
    ($($name:ident),+ $(,)?) => {
        $crate::common::run_tests(::std::vec![
            $($crate::common::trial(::std::stringify!($name), $name)),+
        ])
    };
}
#[allow(unused_imports)]
pub(crate) use tests;

/// The trial `name` of [`tests!`]: runs `f`, whose `Err` message fails it.
pub(crate) fn trial(name: &str, f: fn() -> TestResult) -> libtest_mimic::Trial {
    libtest_mimic::Trial::test(name, move || f().map_err(Into::into))
}

/// What [`tests!`] expands to: parses the libtest arguments, forces one test thread, runs
/// `trials` in order (those the filter keeps) and then `no_leaked_segments`, prints libtest's
/// summary and exits with 0, or 101 if a test failed.
pub(crate) fn run_tests(mut trials: Vec<libtest_mimic::Trial>) -> ! {
    let mut names: Vec<&str> = trials.iter().map(libtest_mimic::Trial::name).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        panic!("test {} is listed twice", w[0]);
    }
    let mut args = libtest_mimic::Arguments::from_args();
    // With one thread libtest-mimic runs each trial on the calling (main) thread, in order;
    // any other count starts a thread pool, after which the engine may no longer fork.
    args.test_threads = Some(1);
    // Last: every segment the tests above created must be gone.
    trials.push(libtest_mimic::Trial::test("no_leaked_segments", || {
        let left = our_segments();
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!("{left:?}").into())
        }
    }));
    libtest_mimic::run(&args, trials).exit()
}

/// A small xorshift generator: reproducible test data without a dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `0..n`.
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Uniform in `[-0.5, 0.5)`.
    pub(crate) fn f64(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    }

    /// Uniform in `[0, 1)`.
    pub(crate) fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Files below `dir`, relative and sorted, hidden ones included.
pub(crate) fn files_below(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    out.sort();
    out
}

/// The shmframe objects in `/dev/shm` created by this process, sorted.
pub(crate) fn our_segments() -> Vec<String> {
    let me = format!("shmframe.{}.", std::process::id());
    let mut v: Vec<String> = std::fs::read_dir("/dev/shm")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&me))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// PNG bytes of `px` (`w` x `h`, pixels of `color`), through the `image` crate.
pub(crate) fn png(px: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::png::PngEncoder::new(&mut out)
        .write_image(px, w, h, color)
        .expect("png encode");
    out
}

/// Lossless WebP bytes of `px`, through the `image` crate.
pub(crate) fn webp_lossless(px: &[u8], w: u32, h: u32, color: image::ExtendedColorType) -> Vec<u8> {
    use image::ImageEncoder;
    let mut out = Vec::new();
    image::codecs::webp::WebPEncoder::new_lossless(&mut out)
        .write_image(px, w, h, color)
        .expect("webp encode");
    out
}

/// A fresh folder under the system temp dir, removed with everything in it on drop. It has a
/// `seg` folder for tests that give the command a private segment directory.
pub(crate) struct TempDir(pub(crate) std::path::PathBuf);

impl TempDir {
    /// `shmframe-test-TAG-PID-N`, empty but for `seg/`.
    pub(crate) fn new(tag: &str) -> Self {
        use std::sync::atomic::{AtomicU64, Ordering};
        static N: AtomicU64 = AtomicU64::new(0);
        let p = std::env::temp_dir().join(format!(
            "shmframe-test-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(p.join("seg")).expect("create temp dir");
        TempDir(p)
    }

    /// `name` inside the folder.
    pub(crate) fn path(&self, name: &str) -> std::path::PathBuf {
        self.0.join(name)
    }

    /// Writes `bytes` to `name` (creating parent folders) and returns its path.
    pub(crate) fn write(&self, name: &str, bytes: &[u8]) -> std::path::PathBuf {
        let p = self.path(name);
        std::fs::create_dir_all(p.parent().unwrap()).expect("mkdir");
        std::fs::write(&p, bytes).expect("write test file");
        p
    }

    /// The private segment directory.
    pub(crate) fn seg(&self) -> std::path::PathBuf {
        self.0.join("seg")
    }

    /// `shmframe.*` objects left in the private segment directory.
    pub(crate) fn segments(&self) -> Vec<String> {
        segments_in(&self.seg())
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Names of the `shmframe.*` objects in `dir` (none if it cannot be read).
pub(crate) fn segments_in(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with("shmframe."))
                .collect()
        })
        .unwrap_or_default()
}
