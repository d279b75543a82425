// SPDX-License-Identifier: MIT OR Apache-2.0
//! A confined child process for work on guest-controlled bytes: `rxen-mkimage explain`
//! parses a guest's disks on dom0, and a parser bug must not become dom0's problem
//! (pygrub's lesson). [`run_confined`] forks; the child, before it touches a guest byte,
//!
//! - dies with its parent (`PR_SET_PDEATHSIG`), keeps only the descriptors it was given
//!   (the disks, opened read-only by the parent), its answer pipe and, as its stderr, a
//!   diagnostics pipe: everything else is closed;
//! - gets limits: CPU time (`RLIMIT_CPU`, SIGXCPU then SIGKILL a second later), address
//!   space (`RLIMIT_AS`), no new files (`RLIMIT_NOFILE` 0), no file growth
//!   (`RLIMIT_FSIZE` 0), no core dump (`RLIMIT_CORE` 0, not dumpable);
//! - drops every capability, sets `PR_SET_NO_NEW_PRIVS` and installs a seccomp filter
//!   ([`allowlist`]) that kills the process on any other system call, any other
//!   architecture's calling convention, or a disallowed argument.
//!
//! The child's only way out is its answer, which the parent reads with a wall-clock
//! deadline and a size cap; every other end becomes a [`Failure`]. The parent never
//! interprets guest bytes itself.
//!
//! The process must be single-threaded when it forks (the child would inherit locks
//! held by threads that do not exist in it, and a seccomp filter binds one thread):
//! `rxen-mkimage explain` starts no thread (clap, the file opens and this module run on
//! the main thread; only `batch` uses threads), and [`run_confined`] checks
//! `/proc/self/task` before it forks.

use std::collections::BTreeMap;
use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read as _, Write as _};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use seccompiler::{SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule};

/// The test hooks' environment variable: read by the parent before it forks (the child
/// reads no environment), acted on by the child once it is confined.
pub const SELFTEST_ENV: &str = "RXEN_EXPLAIN_SANDBOX_SELFTEST";

/// The child's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// CPU time, seconds (`RLIMIT_CPU`).
    pub cpu_secs: u64,
    /// Wall-clock time, seconds: then the parent kills the child.
    pub wall_secs: u64,
    /// Address space, MiB (`RLIMIT_AS`): the mapped binary and libraries count too.
    pub mem_mib: u64,
}

impl Limits {
    /// explain's defaults: 30 s of CPU, 60 s in all, 2 GiB of address space (explain's
    /// guest RAM of 4 GiB is bookkeeping only: what it really holds are the files it
    /// reads, the kernel and initrds, each allocated at its size).
    pub const DEFAULT: Limits = Limits { cpu_secs: 30, wall_secs: 60, mem_mib: 2048 };
}

/// What the child does once confined instead of its work ([`SELFTEST_ENV`]), for the
/// tests that prove the confinement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SelfTest {
    /// `open("/etc/passwd")`: the filter kills the child.
    Open,
    /// Spin: the CPU (or wall-clock) limit ends it.
    Loop,
    /// Allocate without bound: the memory limit ends it.
    Alloc,
    /// Panic: a crash.
    Panic,
    /// Recurse without bound: std's stack-overflow report, then a crash (SIGABRT).
    Stack,
}

impl SelfTest {
    /// The hook [`SELFTEST_ENV`] names, if any.
    pub fn from_env() -> Result<Option<SelfTest>> {
        let Some(v) = std::env::var_os(SELFTEST_ENV) else { return Ok(None) };
        Ok(Some(match v.to_str() {
            Some("open") => SelfTest::Open,
            Some("loop") => SelfTest::Loop,
            Some("alloc") => SelfTest::Alloc,
            Some("panic") => SelfTest::Panic,
            Some("stack") => SelfTest::Stack,
            _ => bail!("{SELFTEST_ENV}={}: expected open, loop, alloc, panic or stack", v.to_string_lossy()),
        }))
    }
}

/// How a child that gave no answer ended. The strings are the child's stderr, made
/// printable and cut short (it may hold guest-controlled text).
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// Killed by the seccomp filter (SIGSYS): a forbidden system call.
    Seccomp,
    /// SIGXCPU, or SIGKILL with the CPU time used up: the CPU limit.
    CpuLimit,
    /// Killed by the parent at the wall-clock deadline.
    WallClock,
    /// An allocation failed under the address-space limit (Rust aborts).
    Memory,
    /// A panic (the child's panic hook exits with [`EXIT_PANIC`]).
    Panic(String),
    /// Another signal.
    Signal(i32, String),
    /// Exited without an answer.
    Exit(i32, String),
    /// The answer went past [`ANSWER_CAP`].
    TooLarge,
    /// The confinement could not be set up: nothing was parsed.
    Setup(String),
}

impl Failure {
    /// The cause, in words, for "explain: CAUSE while parsing DISKS".
    pub fn cause(&self, limits: &Limits) -> String {
        match self {
            Failure::Seccomp => "the disk parser tried a forbidden system call (seccomp killed it)".into(),
            Failure::CpuLimit => format!("CPU limit of {} s hit", limits.cpu_secs),
            Failure::WallClock => format!("wall-clock limit of {} s hit (the parser was killed)", limits.wall_secs),
            Failure::Memory => format!("memory limit of {} MiB hit", limits.mem_mib),
            Failure::Panic(m) => format!("the parser crashed (panic: {m})"),
            Failure::Signal(s, m) => format!("the parser crashed (signal {s}{}{})", signal_name(*s), detail(m)),
            Failure::Exit(code, m) => format!("the parser exited with status {code} without an answer{}", detail(m)),
            Failure::TooLarge => format!("the parser's answer exceeded {} MiB", ANSWER_CAP >> 20),
            Failure::Setup(m) => format!("the disk parser could not be confined: {m}"),
        }
    }
}

/// ": TEXT", or nothing.
fn detail(m: &str) -> String {
    if m.is_empty() { String::new() } else { format!(": {m}") }
}

fn signal_name(s: i32) -> &'static str {
    match s {
        libc::SIGSEGV => " SIGSEGV",
        libc::SIGBUS => " SIGBUS",
        libc::SIGILL => " SIGILL",
        libc::SIGFPE => " SIGFPE",
        libc::SIGABRT => " SIGABRT",
        libc::SIGKILL => " SIGKILL",
        libc::SIGTERM => " SIGTERM",
        libc::SIGPIPE => " SIGPIPE",
        libc::SIGTRAP => " SIGTRAP",
        _ => "",
    }
}

/// The most the parent accepts as an answer.
pub const ANSWER_CAP: usize = 64 << 20;
/// The most of the child's stderr the parent keeps.
const DIAG_CAP: usize = 64 << 10;
/// The child's exit status after a panic (its panic hook).
pub const EXIT_PANIC: i32 = 101;
/// The child's exit status when it could not confine itself (stderr says why).
pub const EXIT_SETUP: i32 = 125;
/// The child's exit status when a selftest hook was not stopped (the confinement failed).
pub const EXIT_ESCAPED: i32 = 126;
/// The child's exit status when its answer could not be written.
const EXIT_WRITE: i32 = 124;
/// After the deadline (or a kill), how long the parent waits for the child to be gone.
const GRACE: Duration = Duration::from_secs(5);

/// Run `work` in a confined child (see the module docs) and return its answer, or how it
/// ended without one. `keep` are the descriptors `work` uses (opened read-only by the
/// caller): the child closes all others. The outer error is the parent's own (no pipe,
/// no fork, more than one thread).
pub fn run_confined<F: FnOnce() -> Vec<u8>>(
    limits: Limits,
    keep: &[RawFd],
    selftest: Option<SelfTest>,
    work: F,
) -> Result<std::result::Result<Vec<u8>, Failure>> {
    ensure_single_threaded()?;
    if let Some(fd) = keep.iter().find(|&&fd| fd <= 2) {
        bail!("explain: descriptor {fd} of a disk is a standard one");
    }
    // The child must become a zombie that wait4 sees: SIGCHLD ignored (inherited through
    // exec) would have the kernel reap it unseen.
    // SAFETY: setting a signal's disposition to the default touches no memory.
    unsafe { libc::signal(libc::SIGCHLD, libc::SIG_DFL) };
    let (result_r, result_w) = pipe()?;
    let (diag_r, diag_w) = pipe()?;
    let parent = std::process::id();
    // SAFETY: fork has no memory-safety preconditions of its own; the danger of fork in
    // a multithreaded process (locks held by threads the child does not have) does not
    // arise: ensure_single_threaded just saw one thread, and this process starts none
    // between that check and here.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error()).context("explain: fork");
    }
    if pid == 0 {
        drop(result_r);
        drop(diag_r);
        child(limits, keep, result_w, diag_w, parent, selftest, work);
    }
    // The parent keeps no write end (EOF when the child is gone) and no disk.
    drop(result_w);
    drop(diag_w);
    drop(work);
    Ok(supervise(pid, limits, result_r, diag_r))
}

/// Refuse to fork with more than one thread (see the module docs). Without /proc the
/// check is skipped: explain starts no thread.
fn ensure_single_threaded() -> Result<()> {
    if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
        let n = tasks.count();
        if n != 1 {
            bail!("explain: the process has {n} threads: the sandbox must fork from a single-threaded one");
        }
    }
    Ok(())
}

/// A pipe, both ends close-on-exec: (read, write).
fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: pipe2 writes two descriptors into the two-element array it is given.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error()).context("explain: pipe");
    }
    // SAFETY: pipe2 succeeded: both descriptors are open and nothing else owns them.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// The child: confine, then work (or the selftest), write the answer, exit. Never
/// returns, never unwinds into the parent's code.
fn child<F: FnOnce() -> Vec<u8>>(
    limits: Limits,
    keep: &[RawFd],
    result_w: OwnedFd,
    diag_w: OwnedFd,
    parent: u32,
    selftest: Option<SelfTest>,
    work: F,
) -> ! {
    if let Err(e) = confine(limits, keep, result_w.as_raw_fd(), diag_w, parent) {
        let _ = writeln!(io::stderr(), "{e:#}");
        exit(EXIT_SETUP);
    }
    // Confined from here on: every guest byte is read below this line.
    if let Some(t) = selftest {
        run_selftest(t);
    }
    let answer = work();
    let mut out = File::from(result_w);
    let code = if out.write_all(&answer).is_ok() { 0 } else { EXIT_WRITE };
    exit(code)
}

/// `_exit`: no atexit handlers, no stdio flush (the child owns no stdout).
fn exit(code: i32) -> ! {
    // SAFETY: _exit ends the process at once; it touches no Rust state.
    unsafe { libc::_exit(code) }
}

fn run_selftest(t: SelfTest) -> ! {
    match t {
        SelfTest::Open => {
            const PASSWD: &CStr = c"/etc/passwd";
            // SAFETY: PASSWD is a NUL-terminated string that lives for the whole call.
            let fd = unsafe { libc::open(PASSWD.as_ptr(), libc::O_RDONLY) };
            let _ = writeln!(io::stderr(), "selftest: open(/etc/passwd) was not stopped (returned {fd})");
            exit(EXIT_ESCAPED)
        }
        SelfTest::Loop => loop {
            std::hint::black_box(());
        },
        SelfTest::Alloc => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![0u8; 64 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        SelfTest::Panic => panic!("sandbox selftest"),
        SelfTest::Stack => {
            let n = deep(0);
            let _ = writeln!(io::stderr(), "selftest: the recursion ended ({n})");
            exit(EXIT_ESCAPED)
        }
    }
}

/// Recursion the optimiser cannot remove, 4 KiB of stack a level.
fn deep(n: u64) -> u64 {
    let frame = std::hint::black_box([n; 512]);
    if std::hint::black_box(n) == u64::MAX {
        return 0;
    }
    deep(n + 1).wrapping_add(frame[n as usize % 512])
}

/// Everything between fork and the first guest byte (see the module docs). Errors end
/// the child with [`EXIT_SETUP`]; nothing here reads the environment.
fn confine(limits: Limits, keep: &[RawFd], result_fd: RawFd, diag_w: OwnedFd, parent: u32) -> Result<()> {
    // Die with the parent; if it is already gone, stop.
    // SAFETY: prctl(PR_SET_PDEATHSIG) takes a signal number and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error()).context("prctl(PR_SET_PDEATHSIG)");
    }
    // SAFETY: getppid has no preconditions.
    if unsafe { libc::getppid() } as u32 != parent {
        exit(EXIT_SETUP);
    }
    // First in line for the out-of-memory killer, should dom0 run short before the
    // address-space limit (best effort: raising one's own score needs no privilege).
    let _ = std::fs::write("/proc/self/oom_score_adj", "1000");
    // SIGXCPU must end the child (an ignored one, inherited through exec, would leave
    // it to the hard limit's SIGKILL).
    // SAFETY: setting a signal's disposition to the default touches no memory.
    unsafe { libc::signal(libc::SIGXCPU, libc::SIG_DFL) };

    // Descriptors: stderr is the diagnostics pipe; only it, the answer and the disks stay.
    // SAFETY: dup2 onto descriptor 2 of two descriptors this process owns (diag_w is
    // open); replacing stderr is the point, no Rust object owns descriptor 2.
    if unsafe { libc::dup2(diag_w.as_raw_fd(), 2) } != 2 {
        return Err(io::Error::last_os_error()).context("dup2(stderr)");
    }
    drop(diag_w);
    let mut kept: Vec<RawFd> = keep.iter().copied().chain([2, result_fd]).collect();
    kept.sort_unstable();
    kept.dedup();
    close_all_but(&kept)?;

    // Limits. Hard CPU a second past soft: SIGXCPU, then SIGKILL if that is survived.
    let mib = limits.mem_mib.saturating_mul(1 << 20);
    for (res, soft, hard, name) in [
        (libc::RLIMIT_CORE, 0, 0, "RLIMIT_CORE"),
        (libc::RLIMIT_CPU, limits.cpu_secs, limits.cpu_secs.saturating_add(1), "RLIMIT_CPU"),
        (libc::RLIMIT_AS, mib, mib, "RLIMIT_AS"),
        (libc::RLIMIT_FSIZE, 0, 0, "RLIMIT_FSIZE"),
        (libc::RLIMIT_NOFILE, 0, 0, "RLIMIT_NOFILE"),
    ] {
        let lim = libc::rlimit { rlim_cur: soft, rlim_max: hard };
        // SAFETY: setrlimit reads the rlimit it is pointed at, which lives on this stack.
        if unsafe { libc::setrlimit(res, &lim) } != 0 {
            return Err(io::Error::last_os_error()).context(name);
        }
    }
    // Not dumpable: no core, no ptrace or /proc/PID/mem from other processes of this uid.
    // SAFETY: prctl(PR_SET_DUMPABLE) takes a flag and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error()).context("prctl(PR_SET_DUMPABLE)");
    }

    // No backtraces: printing one (std does after a failed allocation when RUST_BACKTRACE
    // is set) opens the executable and asks for the working directory. std decides on
    // its first backtrace, which is never before this.
    for var in ["RUST_BACKTRACE", "RUST_LIB_BACKTRACE"] {
        // SAFETY: the child has one thread (fork copies only the calling one, and the
        // parent had one), so nothing reads the environment concurrently.
        unsafe { std::env::remove_var(var) };
    }
    // A panic is reported on stderr, then the child exits: no unwinding, no backtrace.
    std::panic::set_hook(Box::new(|info| {
        let msg = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".into());
        let at = info.location().map(|l| format!("{}:{}: ", l.file(), l.line())).unwrap_or_default();
        let _ = writeln!(io::stderr(), "{at}{msg}");
        exit(EXIT_PANIC);
    }));

    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let rules = allowlist(result_fd, pid).context("seccomp rules")?;
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::KillProcess,
        SeccompAction::Allow,
        std::env::consts::ARCH.try_into().map_err(|e| anyhow!("seccomp: {}: {e:?}", std::env::consts::ARCH))?,
    )
    .map_err(|e| anyhow!("seccomp filter: {e}"))?;
    let program: seccompiler::BpfProgram = filter.try_into().map_err(|e| anyhow!("seccomp filter: {e}"))?;

    drop_capabilities()?;
    // SAFETY: prctl(PR_SET_NO_NEW_PRIVS) takes a flag and touches no memory.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(io::Error::last_os_error()).context("prctl(PR_SET_NO_NEW_PRIVS)");
    }
    seccompiler::apply_filter(&program).map_err(|e| anyhow!("seccomp: {e}"))?;
    Ok(())
}

/// Close every descriptor not in `kept` (sorted, deduplicated).
fn close_all_but(kept: &[RawFd]) -> Result<()> {
    let mut from: u32 = 0;
    for &k in kept.iter().chain([&RawFd::MAX]) {
        let k = k as u32;
        if k > from {
            close_range(from, k - 1)?;
        }
        from = k.saturating_add(1);
    }
    Ok(())
}

fn close_range(first: u32, last: u32) -> Result<()> {
    // SAFETY: close_range closes descriptors of this process; the child holds no Rust
    // object owning one in [first, last] that it uses afterwards (the kept ones are
    // outside every range).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    if r == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() != Some(libc::ENOSYS) {
        return Err(e).context("close_range");
    }
    // Before Linux 5.9: one by one, up to the descriptor limit.
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the rlimit it is pointed at, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error()).context("getrlimit(RLIMIT_NOFILE)");
    }
    let end = u64::from(last).min(lim.rlim_cur.saturating_sub(1).min(1 << 20));
    for fd in u64::from(first)..=end {
        // SAFETY: as for close_range above; EBADF for descriptors not open is fine.
        unsafe { libc::close(fd as i32) };
    }
    Ok(())
}

/// Drop every capability (dom0 runs explain as root): the filter's allowed calls are
/// then also those of an unprivileged process.
fn drop_capabilities() -> Result<()> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    const VERSION_3: u32 = 0x2008_0522;
    let header = Header { version: VERSION_3, pid: 0 };
    let data = [Data { effective: 0, permitted: 0, inheritable: 0 }; 2];
    // SAFETY: capset reads a version-3 header and the two data structures version 3
    // takes, both alive on this stack for the call; lowering capabilities is always allowed.
    if unsafe { libc::syscall(libc::SYS_capset, &header as *const Header, data.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error()).context("capset");
    }
    Ok(())
}

/// The system calls the confined child may make, with the arguments it may make them
/// with; anything else kills it (`SECCOMP_RET_KILL_PROCESS`). `result_fd` is the answer
/// pipe, `pid` the child's own. Found with strace: explain over every fixture disk the
/// project builds (.cache: ext2/3/4, XFS, btrfs with compressed kernels, FAT, ISO 9660,
/// GPT/MBR, LVM, md, hostile ones) and the test hooks' ends (abort, stack overflow, a
/// fault). Not needed: read, open*, clock_gettime (vDSO), futex (one thread), madvise.
pub fn allowlist(result_fd: RawFd, pid: libc::pid_t) -> Result<BTreeMap<i64, Vec<SeccompRule>>> {
    let eq = |arg: u8, v: u64| SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, v);
    let masked = |arg: u8, mask: u64, v: u64| {
        SeccompCondition::new(arg, SeccompCmpArgLen::Dword, SeccompCmpOp::MaskedEq(mask), v)
    };
    let rule = |c: Vec<SeccompCondition>| SeccompRule::new(c);
    let always: Vec<SeccompRule> = Vec::new();
    let e = |e: seccompiler::BackendError| anyhow!("{e}");
    let mut m = BTreeMap::new();
    // The disks: FileDisk reads with pread (the parent opened them read-only).
    m.insert(libc::SYS_pread64, always.clone());
    // The answer, and stderr (the diagnostics pipe: panic and allocation-failure messages).
    m.insert(
        libc::SYS_write,
        vec![rule(vec![eq(0, 2).map_err(e)?]).map_err(e)?, rule(vec![eq(0, result_fd as u64).map_err(e)?]).map_err(e)?],
    );
    // The allocator: anonymous memory only, never executable.
    m.insert(
        libc::SYS_mmap,
        vec![
            rule(vec![
                masked(2, libc::PROT_EXEC as u64, 0).map_err(e)?,
                masked(3, libc::MAP_ANONYMOUS as u64, libc::MAP_ANONYMOUS as u64).map_err(e)?,
            ])
            .map_err(e)?,
        ],
    );
    m.insert(libc::SYS_munmap, always.clone());
    m.insert(libc::SYS_mremap, always.clone());
    m.insert(libc::SYS_brk, always.clone());
    // The disks' descriptors, closed when explain drops them (and the debug build's
    // fcntl(F_GETFD) check in OwnedFd's drop).
    m.insert(libc::SYS_close, always.clone());
    m.insert(libc::SYS_fcntl, vec![rule(vec![eq(1, libc::F_GETFD as u64).map_err(e)?]).map_err(e)?]);
    // abort() after a failed allocation (the memory limit): unblock SIGABRT and send it
    // to this process only.
    m.insert(libc::SYS_rt_sigprocmask, always.clone());
    m.insert(libc::SYS_getpid, always.clone());
    m.insert(libc::SYS_gettid, always.clone());
    m.insert(
        libc::SYS_tgkill,
        vec![rule(vec![eq(0, pid as u64).map_err(e)?, eq(2, libc::SIGABRT as u64).map_err(e)?]).map_err(e)?],
    );
    // A fault outside the stack guard: std's SIGSEGV/SIGBUS handler restores the default
    // action and returns, so the fault repeats and ends the child with that signal (a
    // crash, not a forbidden call).
    m.insert(libc::SYS_rt_sigaction, always.clone());
    m.insert(libc::SYS_rt_sigreturn, always.clone());
    m.insert(libc::SYS_exit, always.clone());
    m.insert(libc::SYS_exit_group, always);
    Ok(m)
}

/// One pipe the parent reads.
struct Stream {
    fd: Option<OwnedFd>,
    data: Vec<u8>,
    cap: usize,
    over: bool,
}

impl Stream {
    fn new(fd: OwnedFd, cap: usize) -> Stream {
        Stream { fd: Some(fd), data: Vec::new(), cap, over: false }
    }

    /// Read what is there (poll said so); EOF closes the stream.
    fn read(&mut self) {
        let Some(fd) = &self.fd else { return };
        let mut buf = [0u8; 64 << 10];
        let mut f = std::mem::ManuallyDrop::new(
            // SAFETY: the descriptor is open (owned by self.fd) for the whole borrow, and
            // ManuallyDrop keeps this File from closing it.
            unsafe { File::from_raw_fd(fd.as_raw_fd()) },
        );
        match f.read(&mut buf) {
            Ok(0) => self.fd = None,
            Ok(n) => {
                let room = self.cap - self.data.len();
                self.data.extend_from_slice(&buf[..n.min(room)]);
                if n > room {
                    self.over = true;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => self.fd = None,
        }
    }
}

/// The parent: read the answer and stderr until the child is gone, within the
/// wall-clock deadline; then say how it ended.
fn supervise(
    pid: libc::pid_t,
    limits: Limits,
    result_r: OwnedFd,
    diag_r: OwnedFd,
) -> std::result::Result<Vec<u8>, Failure> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs(limits.wall_secs);
    let mut answer = Stream::new(result_r, ANSWER_CAP);
    let mut diag = Stream::new(diag_r, DIAG_CAP);
    let mut ended: Option<(i32, libc::rusage)> = None;
    let (mut timed_out, mut too_large, mut killed) = (false, false, None::<Instant>);
    loop {
        if ended.is_none() {
            ended = reap(pid);
        }
        let mut fds: Vec<libc::pollfd> = Vec::new();
        for s in [&answer, &diag] {
            if let Some(fd) = &s.fd {
                fds.push(libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 });
            }
        }
        if ended.is_some() && fds.is_empty() {
            break;
        }
        let now = Instant::now();
        if ended.is_none() && killed.is_none() && now >= deadline {
            timed_out = true;
        }
        if (timed_out || too_large) && killed.is_none() {
            if ended.is_none() {
                // SAFETY: kill sends a signal; pid is our child and not yet reaped (so
                // not reused).
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            killed = Some(now);
        }
        // A child stuck in uninterruptible I/O (a hung disk) dies when that ends: it is
        // not waited for past the grace period.
        let stop = killed.unwrap_or(deadline) + GRACE;
        if now >= stop {
            break;
        }
        let until = if killed.is_some() || ended.is_some() { stop } else { deadline };
        let step = if fds.is_empty() { Duration::from_millis(10) } else { Duration::from_millis(250) };
        let wait = until.saturating_duration_since(now).min(step);
        // SAFETY: fds is a live array of fds.len() pollfd structures poll may write to.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, wait.as_millis() as i32) };
        if n > 0 {
            for p in &fds {
                if p.revents != 0 {
                    for s in [&mut answer, &mut diag] {
                        if s.fd.as_ref().is_some_and(|f| f.as_raw_fd() == p.fd) {
                            s.read();
                        }
                    }
                }
            }
            if answer.over && !too_large {
                too_large = true;
                answer.fd = None;
            }
        }
    }
    let text = printable(&diag.data);
    if too_large {
        return Err(Failure::TooLarge);
    }
    if timed_out {
        return Err(Failure::WallClock);
    }
    let Some((status, usage)) = ended else { return Err(Failure::WallClock) };
    if libc::WIFEXITED(status) {
        return match libc::WEXITSTATUS(status) {
            0 => Ok(answer.data),
            EXIT_PANIC => Err(Failure::Panic(text)),
            EXIT_SETUP => Err(Failure::Setup(text)),
            c => Err(Failure::Exit(c, text)),
        };
    }
    let sig = if libc::WIFSIGNALED(status) { libc::WTERMSIG(status) } else { 0 };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    let cpu = secs(usage.ru_utime) + secs(usage.ru_stime);
    Err(match sig {
        libc::SIGSYS => Failure::Seccomp,
        libc::SIGXCPU => Failure::CpuLimit,
        // The hard limit (a second past the soft one), had SIGXCPU been survived.
        libc::SIGKILL if cpu + 0.1 >= limits.cpu_secs as f64 => Failure::CpuLimit,
        libc::SIGABRT if text.contains("memory allocation of") => Failure::Memory,
        libc::SIGKILL if text.is_empty() => {
            Failure::Signal(libc::SIGKILL, "by dom0's out-of-memory killer or an operator".into())
        }
        s => Failure::Signal(s, text),
    })
}

/// The child's status and resource use, once it has ended.
fn reap(pid: libc::pid_t) -> Option<(i32, libc::rusage)> {
    let mut status = 0;
    // SAFETY: rusage is plain data; all zeroes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: wait4 writes the status and rusage it is pointed at, both on this stack.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            return Some((status, usage));
        }
        if r < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        return None;
    }
}

/// The child's stderr on one line: control characters out, at most 400 characters.
fn printable(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    let mut out = String::new();
    for (i, line) in s.lines().map(str::trim).filter(|l| !l.is_empty()).enumerate() {
        if i > 0 {
            out.push_str("; ");
        }
        out.extend(line.chars().map(|c| if c.is_control() { '?' } else { c }));
    }
    if out.chars().count() > 400 {
        out = out.chars().take(400).collect::<String>() + "...";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_compiles() {
        let f = SeccompFilter::new(
            allowlist(5, 1234).unwrap(),
            SeccompAction::KillProcess,
            SeccompAction::Allow,
            std::env::consts::ARCH.try_into().unwrap(),
        )
        .unwrap();
        let p: seccompiler::BpfProgram = f.try_into().unwrap();
        assert!(!p.is_empty());
    }

    #[test]
    fn stderr_is_made_printable() {
        assert_eq!(printable(b"a\x1b[31mb\n\nc\n"), "a?[31mb; c");
        assert!(printable(&[b'x'; 1000]).ends_with("..."));
    }
}
