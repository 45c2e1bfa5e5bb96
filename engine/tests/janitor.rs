//! The pool's janitor: a coordinator SIGKILLed with a frame and a result leaves no segment
//! and no process behind (fork and spawn start methods), and a normal drop reaps the janitor
//! and leaves the live coordinator's other segments alone.
//!
//! `harness = false` for the same reason as `engine.rs`: the fork start method needs a
//! single-threaded process. The killed coordinator is this binary run again with
//! [`CHILD_ENV`] set; its spawned workers and janitor are this binary too (`main` starts with
//! `spawned_worker_main`).

#![deny(dead_code)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{TempDir, TestResult, segments_in};
use shmframe::{Engine, RowKernel, SegmentDir, StartMethod};

/// Set in the child that plays the coordinator: its start method (`fork` or `spawn`).
const CHILD_ENV: &str = "SHMFRAME_JANITOR_TEST_CHILD";
/// The child's folder: segments in `seg/`, and the `ready` file it writes.
const CHILD_DIR_ENV: &str = "SHMFRAME_JANITOR_TEST_DIR";

fn main() {
    if let Some(code) = shmframe::spawned_worker_main(&shmframe::KernelRegistry::new()) {
        std::process::exit(code);
    }
    if let Some(mode) = std::env::var_os(CHILD_ENV) {
        let dir = PathBuf::from(std::env::var_os(CHILD_DIR_ENV).expect(CHILD_DIR_ENV));
        std::process::exit(coordinator_child(&mode.to_string_lossy(), &dir));
    }
    common::tests![
        killed_fork_coordinator_leaves_nothing,
        killed_spawn_coordinator_leaves_nothing,
        dropped_fork_engine_reaps_its_janitor,
        dropped_spawn_engine_reaps_its_janitor,
    ];
}

fn start_method(mode: &str) -> StartMethod {
    match mode {
        "fork" => StartMethod::Fork,
        "spawn" => StartMethod::Spawn {
            exe: Some(std::env::current_exe().expect("current_exe")),
        },
        other => panic!("unknown start method {other}"),
    }
}

fn matrix(rows: usize, cols: usize) -> Vec<f64> {
    (0..rows * cols).map(|i| (i % 7) as f64 - 3.0).collect()
}

/// The coordinator that gets killed: an engine with a frame and a result, then `ready` (its
/// worker pids) in `dir`, then a long sleep. Exits 3 if nobody kills it within a minute.
fn coordinator_child(mode: &str, dir: &Path) -> i32 {
    let engine = Engine::builder()
        .workers(2)
        .start_method(start_method(mode))
        .segment_dir(SegmentDir::Path(dir.join("seg")))
        .build()
        .expect("engine");
    let frame = engine.frame_from_slice(&matrix(1000, 4), 4).expect("frame");
    let out = engine.run(RowKernel::L2, &frame, "x").expect("run");
    let pids: Vec<String> = engine.worker_pids().iter().map(u32::to_string).collect();
    let tmp = dir.join("ready.tmp");
    std::fs::write(&tmp, pids.join(" ")).expect("write ready");
    std::fs::rename(&tmp, dir.join("ready")).expect("rename ready");
    std::thread::sleep(Duration::from_secs(60));
    drop((out, frame, engine));
    3
}

/// `(ppid, state, pgrp)` of `pid` from `/proc/PID/stat`.
fn stat(pid: u32) -> Option<(u32, char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut it = s[s.rfind(')')? + 1..].split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    let pgrp = it.next()?.parse().ok()?;
    Some((ppid, state, pgrp))
}

/// Alive and not a zombie.
fn alive(pid: u32) -> bool {
    stat(pid).is_some_and(|(_, s, _)| s != 'Z' && s != 'X')
}

fn children_of(parent: u32) -> Vec<u32> {
    let mut v: Vec<u32> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&p| stat(p).is_some_and(|(pp, _, _)| pp == parent))
        .collect();
    v.sort_unstable();
    v
}

/// Whether `pid` ignores SIGINT (`SigIgn` of `/proc/PID/status`, bit 1 for signal 2).
fn ignores_sigint(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            let v = s.lines().find_map(|l| l.strip_prefix("SigIgn:"))?.trim();
            u64::from_str_radix(v, 16).ok()
        })
        .is_some_and(|mask| mask & (1 << (2 - 1)) != 0)
}

/// Whether `pid` is a janitor past its start-up: it names itself so.
fn janitor_named(pid: u32) -> bool {
    shmframe_ipc::process::name(pid).as_deref() == Some("shmf-janitor")
}

/// The nice value of `pid` (field 19 of `/proc/PID/stat`).
fn nice(pid: u32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    s[s.rfind(')')? + 1..]
        .split_whitespace()
        .nth(19 - 3)?
        .parse()
        .ok()
}

/// The start time of `pid` (field 22 of `/proc/PID/stat`).
fn start_ticks(pid: u32) -> u64 {
    shmframe_ipc::process::start_ticks(pid).unwrap_or(0)
}

/// Polls `done` every 10 ms until it holds or `limit` passes; whether it held.
fn within(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Kills (SIGKILL) and reaps the child coordinator, and kills the processes it started, when
/// the test ends however it ends.
struct Cleanup {
    child: Child,
    pids: Vec<u32>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for &p in &self.pids {
            if alive(p) {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(p as i32),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
    }
}

fn killed_coordinator_leaves_nothing(mode: &str) -> TestResult {
    let t = TempDir::new(&format!("janitor-{mode}"));
    let child = Command::new(std::env::current_exe().map_err(|e| e.to_string())?)
        .env(CHILD_ENV, mode)
        .env(CHILD_DIR_ENV, &t.0)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let coordinator = child.id();
    let mut cleanup = Cleanup {
        child,
        pids: Vec::new(),
    };
    let ready = t.path("ready");
    if !within(Duration::from_secs(30), || {
        ready.exists() || cleanup.child.try_wait().ok().flatten().is_some()
    }) || !ready.exists()
    {
        return Err(format!(
            "the coordinator never got ready: {:?}",
            cleanup.child.try_wait()
        ));
    }
    let workers: Vec<u32> = std::fs::read_to_string(&ready)
        .map_err(|e| e.to_string())?
        .split_whitespace()
        .map(|p| p.parse().map_err(|_| format!("bad pid {p:?}")))
        .collect::<Result<_, _>>()?;
    cleanup.pids.extend(&workers);
    let others: Vec<u32> = children_of(coordinator)
        .into_iter()
        .filter(|p| !workers.contains(p))
        .collect();
    cleanup.pids.extend(&others);
    let [janitor] = others[..] else {
        return Err(format!(
            "expected one janitor besides workers {workers:?}, found {others:?}"
        ));
    };
    if workers.len() != 2 {
        return Err(format!("expected 2 workers, got {workers:?}"));
    }

    // What the janitor must remove: the control segment, the frame and the result.
    let owner = format!("shmframe.{coordinator}.{}.", start_ticks(coordinator));
    let theirs = |segs: &[String]| -> Vec<String> {
        segs.iter()
            .filter(|s| s.starts_with(&owner))
            .cloned()
            .collect()
    };
    let before = theirs(&t.segments());
    if before.len() < 3 || !before.iter().any(|s| s.ends_with(".ctl")) {
        return Err(format!(
            "expected the coordinator's segments, found {before:?}"
        ));
    }
    // What it must not: a user segment, and one of another process that had the same pid.
    let decoys = [
        format!(
            "shmframe.{coordinator}.{}.0.other",
            start_ticks(coordinator) + 1
        ),
        "shmframe.keepme".to_string(),
    ];
    for d in &decoys {
        std::fs::write(t.seg().join(d), b"x").map_err(|e| e.to_string())?;
    }

    // A Ctrl-C does not reach it (a process group of its own), and it ignores SIGINT anyway.
    if stat(janitor).map(|(_, _, g)| g) != Some(janitor) {
        return Err(format!(
            "janitor {janitor} is not in a process group of its own"
        ));
    }
    if !within(Duration::from_secs(10), || janitor_named(janitor)) {
        return Err(format!("janitor {janitor} never got past its start-up"));
    }
    if !ignores_sigint(janitor) {
        return Err(format!("janitor {janitor} does not ignore SIGINT"));
    }
    if nice(janitor) != Some(19) {
        return Err(format!(
            "janitor {janitor} has nice {:?}, not 19",
            nice(janitor)
        ));
    }
    let pid = |p: u32| nix::unistd::Pid::from_raw(p as i32);
    let _ = nix::sys::signal::kill(pid(janitor), nix::sys::signal::Signal::SIGINT);

    cleanup.child.kill().map_err(|e| e.to_string())?;
    let status = cleanup.child.wait().map_err(|e| e.to_string())?;
    if status.success() {
        return Err(format!("the coordinator was not killed: {status}"));
    }
    let killed = Instant::now();
    let clean = within(Duration::from_secs(2), || {
        theirs(&t.segments()).is_empty() && !cleanup.pids.iter().any(|&p| alive(p))
    });
    let took = killed.elapsed();
    if !clean {
        let left: Vec<u32> = cleanup.pids.iter().copied().filter(|&p| alive(p)).collect();
        return Err(format!(
            "2 s after the SIGKILL: segments {:?}, processes {left:?} (janitor {janitor})",
            theirs(&t.segments())
        ));
    }
    let mut left = t.segments();
    left.sort();
    let mut want = decoys.to_vec();
    want.sort();
    if left != want {
        return Err(format!(
            "the janitor removed too much: left {left:?}, want {want:?}"
        ));
    }
    eprintln!("{mode}: everything gone {took:?} after the SIGKILL");
    Ok(())
}

fn killed_fork_coordinator_leaves_nothing() -> TestResult {
    killed_coordinator_leaves_nothing("fork")
}

fn killed_spawn_coordinator_leaves_nothing() -> TestResult {
    killed_coordinator_leaves_nothing("spawn")
}

fn dropped_engine_reaps_its_janitor(mode: &str) -> TestResult {
    let t = TempDir::new(&format!("janitor-drop-{mode}"));
    let me = std::process::id();
    let before = children_of(me);
    let engine = Engine::builder()
        .workers(2)
        .start_method(start_method(mode))
        .segment_dir(SegmentDir::Path(t.seg()))
        .build()
        .map_err(|e| e.to_string())?;
    let workers = engine.worker_pids();
    let others: Vec<u32> = children_of(me)
        .into_iter()
        .filter(|p| !workers.contains(p) && !before.contains(p))
        .collect();
    let [janitor] = others[..] else {
        return Err(format!("expected one janitor, found {others:?}"));
    };
    let frame = engine
        .frame_from_slice(&matrix(100, 2), 2)
        .map_err(|e| e.to_string())?;
    let out = engine
        .run(RowKernel::L2, &frame, "x")
        .map_err(|e| e.to_string())?;
    // A segment of this (live) process the engine knows nothing of: the janitor, told to
    // stop while its coordinator lives, must leave it.
    let mine = format!("shmframe.{me}.{}.999999.mine", start_ticks(me));
    std::fs::write(t.seg().join(&mine), b"x").map_err(|e| e.to_string())?;
    // Let the janitor get past its start-up, as it would in use: then the drop waits for its
    // own exit (a janitor still starting is killed at once).
    if !within(Duration::from_secs(10), || janitor_named(janitor)) {
        return Err(format!("janitor {janitor} never got past its start-up"));
    }
    // A second engine alive meanwhile: the children it forks must not hold the first pool's
    // pipe open (the first janitor would not see end-of-file, and the drop would wait 1 s).
    let second = Engine::builder()
        .workers(1)
        .start_method(start_method(mode))
        .segment_dir(SegmentDir::Path(t.seg()))
        .build()
        .map_err(|e| e.to_string())?;

    let t0 = Instant::now();
    drop(engine);
    let took = t0.elapsed();
    if Path::new(&format!("/proc/{janitor}")).exists() {
        return Err(format!(
            "janitor {janitor} not reaped after the drop: {:?}",
            stat(janitor)
        ));
    }
    if let Some(w) = workers
        .iter()
        .find(|&&w| Path::new(&format!("/proc/{w}")).exists())
    {
        return Err(format!("worker {w} still exists after the drop"));
    }
    // The janitor left on end-of-file, not killed after the reap wait (1 s).
    if took > Duration::from_millis(900) {
        return Err(format!(
            "the drop took {took:?}: the janitor did not exit by itself"
        ));
    }
    drop((out, frame, second));
    let left = segments_in(&t.seg());
    if left != vec![mine.clone()] {
        return Err(format!("after the drop: {left:?}, want only {mine}"));
    }
    eprintln!("{mode}: drop took {took:?}");
    Ok(())
}

fn dropped_fork_engine_reaps_its_janitor() -> TestResult {
    dropped_engine_reaps_its_janitor("fork")
}

fn dropped_spawn_engine_reaps_its_janitor() -> TestResult {
    dropped_engine_reaps_its_janitor("spawn")
}
