//! tokio's side of test/benchmark-submit.c: work submitted one at a time
//! to a JoinSet, on the multi-thread runtime with a worker per core
//! (tokio's default, #[tokio::main]'s):
//!
//!   bench-tokio-submit spawn COUNT MS
//!       COUNT tasks, spawned one by one on the set (set.spawn), each
//!       sleeps MS ms; then join them all (join_next until None).
//!   bench-tokio-submit chain COUNT
//!       a chain of COUNT tasks: each yields once (yield_now); as each
//!       is joined, its outcome (its number) is read and the next is
//!       spawned on the set, as an on_op does.
//!
//! Prints one line for benchmark-submit, from the first spawn to the set's
//! end:
//!
//!   result WALL_MS CPU_MS USER_MS SYS_MS OK FAILED FIRST_ERROR|-
//!
//! and, when IOB_BENCH_SETUP_FD names a file descriptor, "setup MS" there:
//! the time the loop that spawns the tasks took.
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

fn cpu_ms() -> (f64, f64) {
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let ms = |t: libc::timeval| t.tv_sec as f64 * 1e3 + t.tv_usec as f64 / 1e3;
    (ms(ru.ru_utime), ms(ru.ru_stime))
}

fn number(s: &str) -> u64 {
    s.parse().unwrap_or_else(|_| {
        eprintln!("bench-tokio-submit: not a number: {}", s);
        std::process::exit(2)
    })
}

async fn link(i: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    Ok(i)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let spawn = args.len() == 4 && args[1] == "spawn";
    if !spawn && !(args.len() == 3 && args[1] == "chain") {
        eprintln!("usage: bench-tokio-submit spawn COUNT MS | chain COUNT");
        std::process::exit(2);
    }
    let count = number(&args[2]);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let (u0, s0) = cpu_ms();
    let t0 = Instant::now();
    let (ok, first, setup) = rt.block_on(async {
        let mut set = JoinSet::new();
        let (mut ok, mut first) = (0u64, None::<String>);
        let mut fail = |e: String| {
            first.get_or_insert(e);
        };
        if spawn {
            let ms = Duration::from_millis(number(&args[3]));
            for _ in 0..count {
                set.spawn(async move {
                    tokio::time::sleep(ms).await;
                    Ok::<u64, String>(0)
                });
            }
        } else if count > 0 {
            set.spawn(link(0));
        }
        let setup = t0.elapsed();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(Ok(i)) => {
                    ok += 1;
                    if !spawn && i + 1 < count {
                        set.spawn(link(i + 1));
                    }
                }
                Ok(Err(e)) => fail(e),
                Err(e) => fail(e.to_string()),
            }
        }
        (ok, first, setup)
    });
    let wall = t0.elapsed().as_secs_f64() * 1e3;
    let (u1, s1) = cpu_ms();
    println!("result {:.1} {:.1} {:.1} {:.1} {} {} {}", wall, u1 - u0 + s1 - s0, u1 - u0, s1 - s0,
             ok, count - ok, first.unwrap_or_else(|| "-".into()).replace(char::is_whitespace, " "));
    if let Some(fd) = std::env::var("IOB_BENCH_SETUP_FD").ok().and_then(|s| s.parse::<i32>().ok()) {
        let line = format!("setup {:.1}\n", setup.as_secs_f64() * 1e3);
        unsafe { libc::write(fd, line.as_ptr() as *const libc::c_void, line.len()) };
    }
}
